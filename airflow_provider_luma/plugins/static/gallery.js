// The "Luma renders" page of one DAG run. Plain JS, no build step, no CDN. Every text from the server is
// untrusted (prompts are user text): it is only ever set through textContent / setAttribute, never parsed as HTML.
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const parts = location.pathname.split("/").filter(Boolean);
  const dagId = decodeURIComponent(parts[parts.length - 2] || "");
  const runId = decodeURIComponent(parts[parts.length - 1] || "");
  const enc = encodeURIComponent;
  const api = `../../api/runs/${enc(dagId)}/${enc(runId)}`;
  const cards = new Map();
  let firstRender = true;

  const el = LumaPage.el;
  function money(v) { return v === null || v === undefined ? "unpriced" : `$${Number(v).toFixed(2)}`; }
  function clock(seconds) {
    const s = Math.max(0, Math.round(Number(seconds) || 0));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }
  function statusText(c) {
    if (c.status === "rendering") return `rendering · ${clock(c.elapsed_seconds)}`;
    if (c.status === "queued") return "queued";
    if (c.status === "retrying") return "waiting to retry";
    return c.status;
  }
  // "9:16" -> "9 / 16" for CSS aspect-ratio (set through the CSSOM, which the page's CSP allows); else null.
  function ratio(c) {
    const m = /^(\d{1,3}):(\d{1,3})$/.exec(String(c.aspect_ratio || ""));
    return m && Number(m[1]) > 0 && Number(m[2]) > 0 ? `${m[1]} / ${m[2]}` : null;
  }
  function facts(c) {
    const items = [
      c.model, c.mode, c.resolution, c.duration, c.aspect_ratio,
      c.hdr === true ? "HDR" : c.hdr === false ? "SDR" : null,
      // A render never bought (refused, not started) has no cost, which is not the same as "unpriced".
      c.bought || c.estimated_cost_usd !== null && c.estimated_cost_usd !== undefined
        ? `est. ${money(c.estimated_cost_usd)}` : "not bought",
      c.stored ? "stored copy" : c.video ? "presigned (fresh on view)" : null,
    ];
    return items.filter((x) => x !== null && x !== undefined && x !== "");
  }

  function buildCard(c) {
    const card = el("article", { class: "clip", id: `clip-${c.key}`, "data-key": c.key });
    card.append(el("div", { class: "placeholder" }, "no video yet"));
    const title = el("div", { class: "title" });
    title.append(el("code", {}, c.key), el("span", { class: "badge" }));
    card.append(title, el("p", { class: "prompt" }), el("p", { class: "facts" }), el("p", { class: "reason" }),
      el("ol", { class: "takes", hidden: "" }));
    cards.set(c.key, card);
    return card;
  }

  function updateCard(card, c, preload) {
    card.dataset.status = c.status;
    const media = card.firstElementChild;
    if (c.video && media.tagName !== "VIDEO") {
      const video = el("video", { controls: "", preload, playsinline: "", src: `../../${c.video}` });
      video.muted = true;
      card.replaceChild(video, media);
    } else if (!c.video && media.tagName !== "VIDEO") {
      const busy = c.status === "rendering" || c.status === "finishing";
      media.textContent = busy ? `${c.status}…` : c.status === "failed" ? "failed" : "no video yet";
    }
    // Each player keeps its clip's shape (a 9:16 reframe stands upright); object-fit in the CSS letterboxes.
    card.firstElementChild.style.aspectRatio = ratio(c) || "";
    const badge = card.querySelector(".badge");
    badge.textContent = statusText(c);
    badge.className = `badge status-${c.status}`;
    card.querySelector(".prompt").textContent = c.prompt || "";
    const factsNode = card.querySelector(".facts");
    factsNode.replaceChildren(...facts(c).map((f) => el("span", {}, f)));
    const reason = card.querySelector(".reason");
    reason.textContent = c.reason ? `Failed: ${c.reason}` : "";
    reason.hidden = !c.reason;
    // A reviewed clip (review=LumaReview): every take with its decision, who made it and when.
    const takes = card.querySelector(".takes");
    const items = (c.takes || []).map((t) => el("li", { class: `decision-${t.decision}`, "data-decision": t.decision },
      `take ${t.number}: ${t.decision}${t.by ? ` by ${t.by}` : ""}${t.at ? ` at ${t.at}` : ""}` +
      `${t.generation_id ? ` · ${t.generation_id}` : ""}`));
    takes.replaceChildren(...items);
    takes.hidden = items.length === 0;
  }

  function layout(clips, edges) {
    const inChain = new Set();
    edges.forEach((e) => { inChain.add(e.from); inChain.add(e.to); });
    const nodes = clips.filter((c) => inChain.has(c.key));
    const parents = new Map(nodes.map((n) => [n.key, []]));
    edges.forEach((e) => parents.get(e.to).push(e.from));
    const depth = new Map();
    const visit = (key, seen) => {
      if (depth.has(key)) return depth.get(key);
      if (seen.has(key)) return 0;
      seen.add(key);
      const d = Math.max(-1, ...parents.get(key).map((p) => visit(p, seen))) + 1;
      depth.set(key, d);
      return d;
    };
    nodes.forEach((n) => visit(n.key, new Set()));
    const rows = new Map();
    const pos = new Map();
    nodes.forEach((n) => {
      const d = depth.get(n.key);
      const r = rows.get(d) || 0;
      rows.set(d, r + 1);
      pos.set(n.key, { x: 10 + d * 230, y: 10 + r * 64, clip: n });
    });
    return { nodes, pos, height: 20 + Math.max(1, ...rows.values()) * 64, width: 20 + (Math.max(0, ...depth.values()) + 1) * 230 };
  }

  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function drawChain(clips, edges) {
    const section = document.getElementById("chain-section");
    section.hidden = edges.length === 0;
    if (!edges.length) return;
    const { nodes, pos, width, height } = layout(clips, edges);
    const W = 170, H = 44;
    const svg = svgEl("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "chain of clips" });
    const defs = svgEl("defs");
    const marker = svgEl("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" });
    marker.append(svgEl("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }));
    defs.append(marker);
    svg.append(defs);
    edges.forEach((e) => {
      const a = pos.get(e.from), b = pos.get(e.to);
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
      const g = svgEl("g", { class: "edge", "data-from": e.from, "data-to": e.to, "data-kind": e.kind });
      g.append(svgEl("title", {}, `${e.to} ${e.kind} ${e.from}`));
      g.append(svgEl("path", { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, "marker-end": "url(#arrow)" }));
      g.append(svgEl("text", { x: mx, y: (y1 + y2) / 2 - 4, "text-anchor": "middle" }, e.kind));
      svg.append(g);
    });
    nodes.forEach((n) => {
      const p = pos.get(n.key);
      const link = svgEl("a", { href: `#clip=${enc(n.key)}` });
      const g = svgEl("g", { class: "node", "data-key": n.key, transform: `translate(${p.x},${p.y})` });
      g.append(svgEl("rect", { width: W, height: H }));
      g.append(svgEl("text", { x: 8, y: 18 }, n.key.length > 24 ? `${n.key.slice(0, 23)}…` : n.key));
      const dropped = (n.takes || []).filter((t) => t.decision === "rejected" || t.decision === "re-render").length;
      const takes = dropped ? ` · ${dropped} take(s) rejected` : "";
      g.append(svgEl("text", { x: 8, y: 35, class: "sub" }, `${n.mode || n.status} · ${money(n.estimated_cost_usd)}${takes}`));
      link.append(g);
      svg.append(link);
    });
    document.getElementById("chain").replaceChildren(svg);
  }

  function highlight() {
    const match = /^#clip=(.+)$/.exec(location.hash);
    if (!match) return;
    const card = cards.get(decodeURIComponent(match[1]));
    if (!card) return;
    document.querySelectorAll(".clip.target").forEach((n) => n.classList.remove("target"));
    card.classList.add("target");
    card.scrollIntoView({ block: "center" });
  }

  function render(data) {
    document.getElementById("run-title").textContent = `${data.dag_id} / ${data.run_id}`;
    const n = data.clips.length;
    const done = data.clips.filter((c) => c.status === "done").length;
    const unpriced = data.unpriced_renders ? `, ${data.unpriced_renders} unpriced` : "";
    document.getElementById("summary").textContent = n
      ? `${n} render(s), ${done} done · estimated total ${money(data.total_estimated_cost_usd)}${unpriced} · run ${data.state || "?"}` +
        (data.in_flight ? " · refreshing while renders are in flight" : "")
      : "This run has no Luma renders.";
    const preload = n <= 30 ? "auto" : "metadata";
    const list = document.getElementById("clips");
    // The server sends the clips in the chain's order (a clip after its sources, else by start time). Cards are
    // moved only when that order changed: moving a <video> in the DOM pauses it.
    const wanted = data.clips.map((c) => cards.get(c.key) || buildCard(c));
    data.clips.forEach((c, i) => updateCard(wanted[i], c, preload));
    const current = Array.from(list.children);
    if (current.length !== wanted.length || wanted.some((card, i) => current[i] !== card)) list.replaceChildren(...wanted);
    drawChain(data.clips, data.edges);
    document.body.dataset.inFlight = data.in_flight ? "1" : "0";
    document.body.dataset.loaded = "1";
    if (firstRender) {
      firstRender = false;
      performance.mark("luma-gallery-rendered");
      highlight();
    }
  }

  window.addEventListener("hashchange", highlight);
  LumaPage.poll(api, render, (data) => data.in_flight, "the renders of this run");
})();
