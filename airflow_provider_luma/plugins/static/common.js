// Shared by the gallery's pages (loaded before each page's own script). Every text from the server is untrusted:
// el() sets it through textContent / setAttribute only, never as HTML.
"use strict";
window.LumaPage = (function () {
  const REFRESH_MS = 3000;

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // Load `api` as JSON and hand it to `render`; load again after REFRESH_MS while `again(data)` says so, and after
  // three times that when it failed (`failure` names what could not be loaded, in the #error node).
  function poll(api, render, again, failure) {
    let timer = null;
    async function load() {
      const errorNode = document.getElementById("error");
      try {
        const response = await fetch(api, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const data = await response.json();
        errorNode.hidden = true;
        render(data);
        clearTimeout(timer);
        if (again(data)) timer = setTimeout(load, REFRESH_MS);
      } catch (err) {
        errorNode.textContent = `Could not load ${failure} (${err.message}).`;
        errorNode.hidden = false;
        timer = setTimeout(load, REFRESH_MS * 3);
      }
    }
    load();
  }

  return { el, poll };
})();
