"""The unauthenticated control surface under ``/_sim/``, for users who run the simulator in another process.

==========================================  ==================================================================
``GET  /_sim/requests``                      the request log, ``{"requests": [LoggedRequest, ...]}``
``GET  /_sim/generations``                   every submitted request, ``{"generations": [GenerationRecord, ...]}``
``GET  /_sim/faults``                        faults not used up yet, ``{"faults": [spec, ...]}``
``POST /_sim/faults``                        queue faults: a JSON list of :meth:`Fault.from_dict` specs
``POST /_sim/reset``                         forget requests, log and faults (settings stay)
``GET|POST /_sim/config``                    read or change settings (``{"time_factor": 0.01, ...}``)
``POST /_sim/requests/{id}/complete``        finish a render now
``POST /_sim/requests/{id}/fail``            fail a render now (optional ``{"reason", "failure_code"}``)
==========================================  ==================================================================

Pure: maps (method, path, parsed body) to (status, JSON value); the HTTP layer does the rest.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from airflow_provider_luma.testing._faults import Fault
from airflow_provider_luma.testing._state import LumaSimulator


def admin_response(sim: LumaSimulator, method: str, name: str, data: Any) -> tuple[int, Any]:
    """Handle ``{method} /_sim/{name}`` with the parsed JSON body ``data``; returns the status and JSON body."""
    parts = name.split("/")
    try:
        if (method, name) == ("GET", "requests"):
            return 200, {"requests": [e.to_dict() for e in sim.request_log]}
        if (method, name) == ("GET", "generations"):
            return 200, {"generations": [g.to_dict() for g in sim.generations()]}
        if (method, name) == ("GET", "faults"):
            return 200, {"faults": [f.to_dict() for f in sim.pending_faults]}
        if (method, name) == ("POST", "faults"):
            specs = data.get("faults", []) if isinstance(data, dict) else data
            if not isinstance(specs, list):
                raise ValueError("expected a JSON list of fault specs")
            faults = [Fault.from_dict(spec) for spec in specs]  # parse all before queueing any
            sim.inject(*faults)
            return 200, {"queued": len(faults), "faults": [f.to_dict() for f in sim.pending_faults]}
        if (method, name) == ("POST", "reset"):
            sim.reset()
            return 200, {"status": "reset"}
        if name == "config" and method in ("GET", "POST"):
            if method == "POST":
                if not isinstance(data, dict):
                    raise ValueError("expected a JSON object of settings")
                sim.configure(**data)
            return 200, asdict(sim.config)
        if method == "POST" and len(parts) == 3 and parts[0] == "requests" and parts[2] in ("complete", "fail"):
            if parts[2] == "complete":
                return 200, sim.complete_now(parts[1]).to_dict()
            return 200, sim.fail_now(parts[1], **(data if isinstance(data, dict) else {})).to_dict()
    except KeyError:
        return 404, {"error": "Request not found"}
    except (ValueError, TypeError) as exc:
        return 400, {"error": str(exc)}
    return 404, {"error": f"Unknown admin endpoint: {method} /_sim/{name}"}
