"""The worker- and triggerer-side life of one render, between the Airflow-free core and the Airflow surface.

The tree reads ``core`` (specs, wires, client, prices: no Airflow) → ``runtime`` (this package) → the Airflow
surface (``operators``, ``hooks``, ``triggers``, ``sensors``) → the UI (``plugins``). Nothing here imports an
operator, not even for type checking: what the runtime needs from the task arrives as a :mod:`.task` protocol and a
frozen :class:`~airflow_provider_luma.runtime.plan.RenderPlan` the operator builds. ``tests/test_layout.py``
enforces both, and that the package has no import cycle.

* :mod:`.plan`: every run option and the validated request, as frozen values; the upstream source facts.
* :mod:`.task`: the small protocols for the task (log, defer, link, delivery record, pre-flight) and two context
  helpers.
* :mod:`.record`: the durable, versioned record in ``task_state_store`` (``luma_render``) and its phases.
* :mod:`.flow`: execute: validate, re-attach or submit at most once, then defer or poll.
* :mod:`.finish`: a terminal event to the task's result (or the right exception), files stored, success recorded.
* :mod:`.results`: the TypedDict payloads (trigger event, task result), one builder each.
* :mod:`.money`: money on the Airflow side: the run budget (``max_run_cost_usd``) and the run-wide cost scan.
* :mod:`.turns`: whose turn it is to decide on the run budget (Lamport's bakery over XCom registers).
* :mod:`.delivery`, :mod:`.download`: storing a finished render's files, Asset events, the "Luma video" link; the
  download operator's whole run.
* :mod:`.delivery_record`: the ``luma_delivery`` rendered field the gallery trusts.
* :mod:`.storage` (output sinks), :mod:`.source_video` (opening a user's source video).
* :mod:`.polling`: the one wait (schedule, state machine, events, event reading) of worker, trigger and sensor.
* :mod:`.progress`: the progress lines of a waiting render.
* :mod:`.outcome`, :mod:`.lineage`: OpenLineage.

Nothing here is imported at DAG-parse time except :mod:`.outcome` (a decorator on ``execute``).
"""
