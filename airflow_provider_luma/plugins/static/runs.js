// The nav page: recent runs with Luma renders. Text is set with textContent only (ids are user-chosen).
"use strict";
(function () {
  const enc = encodeURIComponent;
  function cell(text) { const td = document.createElement("td"); td.textContent = text === null ? "" : String(text); return td; }
  fetch("api/runs", { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then((r) => { if (!r.ok) throw new Error(`HTTP ${r.status}`); return r.json(); })
    .then((data) => {
      const body = document.querySelector("#runs tbody");
      data.runs.forEach((run) => {
        const tr = document.createElement("tr");
        const runCell = document.createElement("td");
        const a = document.createElement("a");
        a.href = `runs/${enc(run.dag_id)}/${enc(run.run_id)}`;
        a.textContent = run.run_id;
        runCell.append(a);
        tr.append(cell(run.dag_id), runCell, cell(run.state), cell(run.start_date), cell(run.renders));
        body.append(tr);
      });
      document.getElementById("empty").hidden = data.runs.length > 0;
      document.body.dataset.loaded = "1";
    })
    .catch((err) => {
      const node = document.getElementById("error");
      node.textContent = `Could not load the runs (${err.message}).`;
      node.hidden = false;
    });
})();
