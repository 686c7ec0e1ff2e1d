// The "Luma review" tab of a task instance: the latest take plays; every take is listed with its decision, who made
// it and when. Plain JS, no build step, no CDN. Every text from the server is untrusted (prompts, names are user
// text): only ever set through textContent / setAttribute, never parsed as HTML.
"use strict";
(function () {
  const parts = location.pathname.split("/").filter(Boolean);
  const [dagId, runId, taskId] = parts.slice(-4, -1).map(decodeURIComponent);
  // The UI fills {MAP_INDEX} only for a mapped task instance; an unmapped one sends the placeholder itself.
  const mapIndex = /^-?\d+$/.test(parts[parts.length - 1]) ? parts[parts.length - 1] : "-1";
  const enc = encodeURIComponent;
  const api = `../../../../api/review/${enc(dagId)}/${enc(runId)}/${enc(taskId)}/${enc(mapIndex)}`;
  let shownGeneration = null;

  const el = LumaPage.el;

  function render(data) {
    document.getElementById("ti-title").textContent = `${data.dag_id} / ${data.run_id} / ${data.task_id}`;
    const link = document.getElementById("gallery-link");
    link.setAttribute("href", `../../../../runs/${enc(data.dag_id)}/${enc(data.run_id)}#clip=${enc(data.task_id)}`);
    const n = data.takes.length;
    document.getElementById("summary").textContent = data.awaiting_review
      ? `Take ${n || 1} awaits your review.`
      : n ? `${n} take(s); task ${data.state || "?"}.` : `No review for this task instance (task ${data.state || "?"}).`;
    const holder = document.getElementById("player");
    // A new take replaces the player; the same take keeps it (replacing a <video> stops it).
    if (data.video && data.generation_id !== shownGeneration) {
      const video = el("video", { controls: "", preload: "auto", playsinline: "", src: `../../../../${data.video}`,
        "data-generation-id": data.generation_id || "" });
      video.muted = true;
      video.id = "player";
      holder.replaceWith(video);
      shownGeneration = data.generation_id;
    } else if (!data.video && holder.tagName !== "VIDEO") {
      holder.textContent = data.state === "deferred" || data.state === "running" ? "rendering…" : "no take to watch yet";
    }
    const rows = data.takes.map((t) => {
      const tr = el("tr", { "data-take": t.number, "data-decision": t.decision });
      const changed = Object.entries(t.edits || {}).map(([k, v]) => `${k}: ${v}`).join("; ");
      [t.number, t.decision, t.by || "", t.at || "", t.generation_id || "", t.note ? `${changed} (refused: ${t.note})` : changed]
        .forEach((v) => tr.append(el("td", {}, v)));
      return tr;
    });
    document.querySelector("#takes tbody").replaceChildren(...rows);
    document.body.dataset.loaded = "1";
  }

  // Airflow reports a task's success a moment before its worker re-sends the delivery record the player needs: a
  // reviewed task that succeeded without a player yet is not settled (its approved take is on its way), for a minute
  // at most (the gallery's FINISHING_SECONDS), should the record never land.
  let finishingPolls = 0;
  const finishing = (data) => data.state === "success" && !data.video && data.takes.length > 0 && ++finishingPolls <= 20;
  const settled = (data) => ["success", "failed", "skipped", "upstream_failed"].includes(data.state) && !finishing(data);
  LumaPage.poll(api, render, (data) => !settled(data), "this task instance's takes");
})();
