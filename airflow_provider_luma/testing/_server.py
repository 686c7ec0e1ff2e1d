"""The HTTP layer of the simulator: a stdlib ``ThreadingHTTPServer`` in a daemon thread.

It only translates between HTTP and :class:`LumaSimulator`: fault application, the request log, media files and
writing bytes; the API's routes and answers are its front's (:mod:`._gmi` or :mod:`._native`). Every decision
about requests and renders is the simulator's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from airflow_provider_luma.testing._admin import admin_response
from airflow_provider_luma.testing._faults import Fault, FaultTarget, LoggedRequest, canned_response
from airflow_provider_luma.testing._gmi import BASE_PATH, METHODS_OF, GmiFront
from airflow_provider_luma.testing._media import MediaBody
from airflow_provider_luma.testing._native import NATIVE_BASE_PATH, NativeFront
from airflow_provider_luma.testing._reply import Call, Front, Reply, error_reply, json_reply, parse_json
from airflow_provider_luma.testing._state import LumaSimulator
from airflow_provider_luma.testing._types import APIS, DEFAULT_TEST_API_KEY, Api, SimulatorError

__all__ = ["BASE_PATH", "NATIVE_BASE_PATH", "LumaSimulatorServer"]

FILES_PATH: Final = "/files/"
ADMIN_PATH: Final = "/_sim/"


def key_fingerprint(api_key: str) -> str:
    """What a job records of the key that created it (the native API hides other keys' generations)."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def make_front(api: Api, simulator: LumaSimulator) -> Front:
    """The front that speaks ``api`` over ``simulator``.

    :raises ValueError: for an unknown ``api``.
    """
    if api == "gmi":
        return GmiFront(simulator)
    if api == "luma_agents":
        return NativeFront(simulator)
    raise ValueError(f"api must be one of {', '.join(APIS)}, got {api!r}")


class _HTTPServer(ThreadingHTTPServer):
    # Handler threads must not keep the process alive, nor make stop() wait for a slow fault or a download.
    daemon_threads = True
    # socketserver's default backlog of 5 drops SYNs when many triggers poll at once; clients then stall ~1 s.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], front: Front, api_key: str, verbose: bool) -> None:
        self.front = front
        self.simulator = front.simulator
        self.api_key = api_key
        self.owner = key_fingerprint(api_key)
        self.verbose = verbose
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hang up mid-download and time out on slow faults all the time; that is not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects from a real API
    timeout = 60  # an idle keep-alive connection gives its thread back after this long
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle's algorithm meets the client's
        # delayed ACK and every keep-alive answer waits ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def version_string(self) -> str:
        return "LumaSimulator"

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # -- dispatch -----------------------------------------------------------------------------------------

    def _handle(self, method: str) -> None:
        sim = self.server.simulator
        at = sim.now()
        url = urlsplit(self.path)
        body = self._read_body()
        if url.path.startswith(ADMIN_PATH):
            # The harness talking to the simulator: neither faulted nor logged.
            data = parse_json(body)
            if body and data is None:
                status, answer = 400, {"error": "Request body is not valid JSON"}
            else:
                status, answer = admin_response(sim, method, url.path[len(ADMIN_PATH) :], data or {})
            self._send(json_reply(status, answer), head_only=method == "HEAD")
            return
        try:
            reply = self._api(method, url.path, url.query, body)
        except Exception:  # a simulator bug must show up as a 500, not as a dropped connection
            traceback.print_exc()
            reply = json_reply(500, {self.server.front.error_key: "Simulator internal error"})
        # Log before answering, so a test that reads the log right after its response finds the entry.
        entry = LoggedRequest(method, url.path, reply.status, parse_json(body), reply.request_id, reply.fault, at)
        sim.log_request(entry)
        self._send(reply, head_only=method == "HEAD")

    def _api(self, method: str, path: str, query: str, body: bytes) -> Reply:
        sim, front = self.server.simulator, self.server.front
        call = self._call(method, path, body)
        log_id = front.log_id(call.path_id)
        # Faults come before auth: they stand for the network and the proxies in front of the API.
        fault: Fault | None = sim.take_fault(call.target) if call.target is not None else None
        reply: Reply | None = None
        if fault is not None:
            if fault.kind == "drop_connection":
                return Reply(None, request_id=log_id, fault=fault.kind)
            canned = canned_response(fault, now=sim.now(), rpm_limit=sim.config.rpm_limit, error_key=front.error_key)
            if canned is not None:
                reply = Reply(canned.status, canned.body, canned.content_type, canned.headers, log_id, fault.kind)
            elif fault.kind == "slow":
                time.sleep(fault.delay_seconds or 0.0)
        if reply is None:
            try:
                reply = self._process(call, query)
            except SimulatorError as exc:
                reply = error_reply(exc, front.error_key, log_id)
        if fault is not None:
            reply.fault = fault.kind
            if fault.kind == "drop_after_accept":
                reply.status = None
            if fault.kind == "cut_body":
                reply.cut_after = fault.cut_after_bytes or 0
        if path == front.base_path or path.startswith(front.base_path + "/"):
            front.finish(reply, call)
        return reply

    def _call(self, method: str, path: str, body: bytes) -> Call:
        front = self.server.front
        target: FaultTarget | None = None
        path_id = None
        if path.startswith(front.base_path + "/"):
            target, path_id = front.route(method, path)
        elif path.startswith(FILES_PATH) and method in METHODS_OF["download"]:
            target = "download"
        return Call(
            method, path, body, self.headers, target, path_id, self._authorized(), self.server.owner, self._root_url()
        )

    def _process(self, call: Call, query: str) -> Reply:
        sim, front = self.server.simulator, self.server.front
        if call.path == front.base_path or call.path.startswith(front.base_path + "/"):
            return front.process(call)
        if call.target == "download":
            params = parse_qs(query)
            media, owner = sim.open_media(
                call.path[len(FILES_PATH) :],
                expires=params.get("expires", [None])[0],
                sig=params.get("sig", [None])[0],
            )
            return Reply(200, media, media.content_type, request_id=owner)
        return json_reply(404, {front.error_key: "Not found"})

    # -- I/O helpers ----------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(length) if length > 0 else b""

    def _authorized(self) -> bool:
        given = self.headers.get("Authorization", "").encode("utf-8", "replace")
        return hmac.compare_digest(given, f"Bearer {self.server.api_key}".encode())

    def _root_url(self) -> str:
        # Mint media URLs for the host name the client used, so they work from wherever it reached us.
        host = self.headers.get("Host")
        if host:
            return f"http://{host}"
        host, port = str(self.server.server_address[0]), int(self.server.server_address[1])
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def _send(self, reply: Reply, *, head_only: bool) -> None:
        if reply.status is None:
            self._hang_up()
            return
        size = reply.body.size if isinstance(reply.body, MediaBody) else len(reply.body)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(size))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if head_only:
            return
        chunks = reply.body.chunks() if isinstance(reply.body, MediaBody) else iter([reply.body])
        budget = reply.cut_after
        for chunk in chunks:
            if budget is not None and len(chunk) >= budget:
                self.wfile.write(chunk[:budget])
                self._hang_up()
                return
            self.wfile.write(chunk)
            if budget is not None:
                budget -= len(chunk)

    def _hang_up(self) -> None:
        self.close_connection = True
        try:  # shut down now so the client sees EOF at once, not when this thread finishes
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class LumaSimulatorServer:
    """A :class:`LumaSimulator` served over real HTTP on ``127.0.0.1``, in a daemon thread.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with LumaSimulatorServer(time_factor=0.01) as server:
            os.environ["AIRFLOW_CONN_LUMA_DEFAULT"] = server.airflow_conn_json()
            ...

    :param simulator: the state to serve; a new one is made from ``simulator_kwargs`` when omitted. Several
        servers may share one simulator, e.g. one per API, so a generation made on one front is a source on the other.
    :param api: ``"gmi"`` (GMI's request queue under :data:`BASE_PATH`) or ``"luma_agents"`` (the native Luma
        Agents API under ``/v1``).
    :param host: interface to bind; ``0.0.0.0`` serves other machines too (URLs then name ``127.0.0.1``).
    :param port: TCP port; 0 picks a free one (read it back from :attr:`port`).
    :param api_key: the only key accepted as ``Authorization: Bearer <api_key>``.
    :param verbose: write one stderr line per request, as ``http.server`` does by default.
    :param simulator_kwargs: :class:`LumaSimulator` settings (``time_factor``, ``render_seconds``, ...).
    """

    def __init__(
        self,
        simulator: LumaSimulator | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = DEFAULT_TEST_API_KEY,
        verbose: bool = False,
        api: Api = "gmi",
        **simulator_kwargs: Any,
    ) -> None:
        if simulator is not None and simulator_kwargs:
            raise TypeError("pass either a simulator or simulator settings, not both")
        if api not in APIS:
            raise ValueError(f"api must be one of {', '.join(APIS)}, got {api!r}")
        self.simulator = simulator if simulator is not None else LumaSimulator(**simulator_kwargs)
        self.api: Api = api
        self.host = host
        self.api_key = api_key
        self.verbose = verbose
        self._port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the server is accepting connections."""
        return self._httpd is not None

    @property
    def port(self) -> int:
        """The bound port.

        :raises RuntimeError: when port 0 was asked for and the server has not started yet.
        """
        if self._httpd is not None:
            return int(self._httpd.server_address[1])
        if self._port:
            return self._port
        raise RuntimeError("the server picks its port when it starts: call start() first")

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:{port}``: the server root, where media files and ``/_sim/`` live."""
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API base URL to configure a client or Connection with: ``…/api/v1/ie/requestqueue/apikey`` for GMI,
        ``…/v1`` for the native API."""
        return self.root_url + (NATIVE_BASE_PATH if self.api == "luma_agents" else BASE_PATH)

    @property
    def admin_url(self) -> str:
        """Root of the unauthenticated control endpoints (``/_sim/requests``, ``/_sim/faults``, ...)."""
        return self.root_url + ADMIN_PATH.rstrip("/")

    @property
    def schedule_time_factor(self) -> float:
        """How fast this server's clock runs against real renders: ``time_factor``, or for a fixed
        ``render_seconds`` that time over a 5-s 720p render's 60 s (capped at 1)."""
        config = self.simulator.config
        if config.render_seconds is not None:
            return min(1.0, config.render_seconds / 60.0)
        return min(1.0, config.time_factor)

    def airflow_conn_json(
        self, conn_type: str = "luma", *, follow_speed: bool = False, extra: Mapping[str, Any] | None = None
    ) -> str:
        """The JSON for ``AIRFLOW_CONN_LUMA_DEFAULT`` that points a Luma Connection at this server.

        For the native API it adds ``"extra": {"api": "luma_agents"}``.

        :param follow_speed: add the extra ``schedule_time_factor`` (:attr:`schedule_time_factor`), so the
            operators' poll schedule runs at this server's speed (what the ``luma_airflow`` fixture does).
        :param extra: further extras (``prices``, ``organization_id``, …), laid over those.
        :raises ValueError: ``extra["api"]`` is not this server's API (the connection would speak the wrong wire).
        """
        conn: dict[str, Any] = {"conn_type": conn_type, "host": self.base_url, "password": self.api_key}
        if extra and extra.get("api", self.api) != self.api:
            raise ValueError(
                f"connection extra api={extra['api']!r} contradicts the simulator's api={self.api!r}: "
                "choose the API on the server (luma_simulator(api=...) or luma_api)"
            )
        merged: dict[str, Any] = {"api": self.api} if self.api != "gmi" else {}
        if follow_speed:
            merged["schedule_time_factor"] = self.schedule_time_factor
        merged.update(extra or {})
        if merged:
            conn["extra"] = merged
        return json.dumps(conn, separators=(",", ":"))

    def start(self) -> LumaSimulatorServer:
        """Bind and serve in a daemon thread; returns once connections are accepted. A no-op when running."""
        if self._httpd is not None:
            return self
        httpd = _HTTPServer((self.host, self._port), make_front(self.api, self.simulator), self.api_key, self.verbose)
        serving = threading.Event()

        def serve() -> None:
            serving.set()
            # A short poll keeps stop() (which waits for the loop to notice) at ~10 ms per test.
            httpd.serve_forever(poll_interval=0.01)

        thread = threading.Thread(target=serve, name=f"luma-simulator-{httpd.server_address[1]}", daemon=True)
        thread.start()
        # The socket listens since the constructor; waiting for the loop too means the first request is
        # answered without delay.
        serving.wait(5.0)
        self._httpd, self._thread = httpd, thread
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket. Idempotent; in-flight answers may still finish."""
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5.0)

    def __enter__(self) -> LumaSimulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self.running else "not running"
        return f"<LumaSimulatorServer {where}>"
