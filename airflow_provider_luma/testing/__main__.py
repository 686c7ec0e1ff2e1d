"""Run the Luma simulator from the command line until SIGINT or SIGTERM.

::

    python -m airflow_provider_luma.testing --port 8799 --time-factor 0.1
    # prints the base URL and an `export AIRFLOW_CONN_LUMA_DEFAULT='…'` line to paste into another shell
    python -m airflow_provider_luma.testing --api luma_agents
    # the native Luma Agents API under /v1 instead (the Connection gets "extra": {"api": "luma_agents"})
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from types import FrameType

from airflow_provider_luma.testing._server import LumaSimulatorServer
from airflow_provider_luma.testing._types import APIS, DEFAULT_TEST_API_KEY


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_luma.testing",
        description="Serve a local simulator of GMI Cloud's request queue (or of the native Luma Agents API) for "
        "Luma Ray 3.2 (generate, edit, reframe).",
    )
    parser.add_argument(
        "--api", choices=APIS, default="gmi", help="gmi: GMI's request queue (default); luma_agents: the native API"
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: 0, any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument("--api-key", default=DEFAULT_TEST_API_KEY, help="the accepted Bearer key")
    parser.add_argument("--time-factor", type=float, default=1.0, help="multiplies render times (default: 1.0)")
    parser.add_argument("--render-seconds", type=float, default=None, help="fixed render time for every request")
    parser.add_argument("--response-style", choices=("outcome", "flat"), default="outcome")
    parser.add_argument("--max-concurrent-jobs", type=int, default=None, help="429 beyond this many active jobs")
    parser.add_argument("--rpm-limit", type=int, default=None, help="429 beyond this many submits per minute")
    parser.add_argument("--video-size-bytes", type=int, default=None, help="pad served MP4s to this size")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Start the server, print how to reach it, and serve until SIGINT/SIGTERM. Returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        server = LumaSimulatorServer(
            host=args.host,
            port=args.port,
            api_key=args.api_key,
            verbose=args.verbose,
            api=args.api,
            time_factor=args.time_factor,
            render_seconds=args.render_seconds,
            response_style=args.response_style,
            max_concurrent_jobs=args.max_concurrent_jobs,
            rpm_limit=args.rpm_limit,
            video_size_bytes=args.video_size_bytes,
        )
        server.start()
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"Luma simulator listening on {server.base_url}")
    # The poll schedule follows the simulator's clock, so --time-factor speeds up the whole wait.
    print(f"export AIRFLOW_CONN_LUMA_DEFAULT={shlex.quote(server.airflow_conn_json(follow_speed=True))}")
    print(f"Admin endpoints: {server.admin_url}/requests, /faults, /config, /reset. Ctrl-C stops.", flush=True)
    # Event.wait with a timeout keeps the main thread responsive to signals on every platform.
    while not stopping.wait(0.5):
        pass
    server.stop()
    print("Luma simulator stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
