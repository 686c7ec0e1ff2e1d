"""Streaming a large render to storage: peak memory growth, and throughput against a raw loopback copy.

Starts the simulator (``python -m airflow_provider_luma.testing``) in its own process with videos padded to
``--size-mb`` MiB (default 512), submits one render and waits for its presigned ``video_url``, which serves exactly
that many bytes in 1 MiB chunks. Then alternates two copies of those same bytes into a file, ``--rounds`` times
each (raw, provider, raw, provider, ...), deleting the output between runs:

* **raw** — the baseline: a plain ``socket`` HTTP/1.1 ``GET`` (``Connection: close``), headers skipped, then
  ``recv_into`` a 1 MiB buffer and ``write`` it to a file opened with ``open(dest, "wb")``. No HTTP library, no
  storage layer: about as fast as Python can move loopback bytes to disk.
* **provider** — what the operator does: :func:`airflow_provider_luma.core.media.download` with
  :func:`~airflow_provider_luma.core.media.media_client` into a
  :class:`~airflow_provider_luma.runtime.storage.StorageSink` over ``ObjectStoragePath("file://...")`` (temporary name,
  rename on completion); the final file must hold exactly the served byte count.

Each run is a fresh Python process (this script with ``--child``), so imports and earlier runs do not blur its
memory figures. After imports and a warm-up (a ``HEAD`` of the same URL; for the provider also one tiny write and
discard through a ``StorageSink``) it resets the kernel's peak-RSS mark to the current RSS
(``/proc/self/clear_refs``), reads ``VmRSS``, copies, and reads the peak again. *Growth* = peak - RSS before the
copy. The peak is ``VmHWM``, the high-water mark of the process's own memory; ``ru_maxrss`` is the same figure
except that Linux folds into it the peak of the address space that ``exec`` replaced -- here the parent's, shared
through ``vfork`` -- so in a small child it shows the parent's memory (it is used only if the reset fails).
Throughput = bytes / wall time of the copy (connect until the file is closed and, for the provider, renamed).
Page-cache pages of the written file are not RSS and are not counted.

With two or more CPUs, the simulator is pinned to one and each measured process to another, so the copy under test
does not fight the server for a core. The raw copy is still sensitive to other load on the machine: compare the
per-run figures before trusting a ratio.

Targets: median provider throughput >= 80 % of the median raw throughput, and the provider's peak RSS growth
<= 50 MB (10^6 B) in every run. Linux only (``/proc``).

Why 5 rounds and medians: on this machine's ext4 ``/tmp``, writing 512 MiB to a new file now and then takes about
1 s instead of 0.1 s inside the kernel, for any writer: a plain ``open(..., "wb")`` loop of 1 MiB writes shows it
too (0.08 s, 0.08 s, 1.04 s, ...). Whichever copy hits it looks 8x slower; medians of 5 ignore one or two hits,
and the best-of-runs ratio is printed alongside.

    python benchmarks/download.py [--size-mb 512] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_RATIO = 0.80
TARGET_RSS_MB = 50.0
NOISY_SPREAD = 1.5  # raw runs further apart than this (max / min) mean something else is using the CPUs
CHUNK = 1 << 20
MIB = 1 << 20
MB = 1_000_000
STARTUP_TIMEOUT = 30.0
RENDER_TIMEOUT = 60.0


# -- child side: one measured copy in a fresh process -----------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        match = re.search(rf"^{field}:\s+(\d+) kB", handle.read(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {field}")
    return int(match.group(1))


def _reset_peak_rss() -> bool:
    """Reset the peak-RSS mark to the current RSS, so the peak is that of the copy (not of the imports)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def _raw_request(url: str, method: str) -> tuple[socket.socket, int, bytes]:
    """Send ``method url`` on a new connection; returns the socket, the Content-Length and any body bytes read."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80))
    sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode("ascii"))
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("connection closed inside the response headers")
        head += data
    head, _, rest = head.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if lines[0].split(" ", 2)[1] != "200":
        raise RuntimeError(f"{method} answered {lines[0]!r}")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return sock, int(headers["content-length"]), rest


def _raw_copy(url: str, dest: str, size: int) -> None:
    sock, length, rest = _raw_request(url, "GET")
    if length != size:
        raise RuntimeError(f"server announced {length} bytes, expected {size}")
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    received = len(rest)
    with sock, open(dest, "wb") as out:
        out.write(rest)
        while received < size:
            n = sock.recv_into(view)
            if not n:
                break
            out.write(view[:n])
            received += n
    if received != size or os.path.getsize(dest) != size:
        raise RuntimeError(f"raw copy got {received} bytes, wrote {os.path.getsize(dest)}, expected {size}")


def child(mode: str, url: str, dest: str, size: int) -> int:
    """Measure one copy; print one JSON line for the parent."""
    rss_start = _status_kib("VmRSS")
    copy: Any
    if mode == "raw":
        sock, _, _ = _raw_request(url, "HEAD")
        sock.close()

        def copy() -> None:
            _raw_copy(url, dest, size)

    elif mode == "provider":
        import urllib.request

        from airflow.sdk import ObjectStoragePath

        from airflow_provider_luma.core.media import download, media_client
        from airflow_provider_luma.runtime.storage import StorageSink

        client = media_client()
        client.open(urllib.request.Request(url, method="HEAD"), timeout=30).close()
        # One tiny file through the whole sink (open, write, rename, lineage report): loads those code paths once,
        # as any earlier task in a worker process would have.
        warm = StorageSink(ObjectStoragePath(f"file://{dest}.warm"))
        with warm.open() as handle:
            handle.write(b"warm-up")
        warm.commit(len(b"warm-up"))
        os.remove(f"{dest}.warm")

        def copy() -> None:
            sink = StorageSink(ObjectStoragePath(f"file://{dest}"))
            stats = download(client, lambda fresh: url, sink, label="bench video")
            if stats.size != size or os.path.getsize(dest) != size:
                raise RuntimeError(f"provider stored {os.path.getsize(dest)} bytes ({stats.size} counted), not {size}")

    else:
        raise SystemExit(f"unknown mode {mode!r}")

    reset = _reset_peak_rss()
    rss_before = _status_kib("VmRSS")
    started = time.perf_counter()
    copy()
    seconds = time.perf_counter() - started
    ru_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    peak = _status_kib("VmHWM") if reset else ru_maxrss
    result = {
        "mode": mode,
        "bytes": size,
        "seconds": seconds,
        "mib_s": size / MIB / seconds,
        "rss_start_kib": rss_start,
        "rss_before_kib": rss_before,
        "peak_kib": peak,
        "ru_maxrss_kib": ru_maxrss,
        "growth_kib": peak - rss_before,
        "peak_reset": reset,
    }
    print(json.dumps(result), flush=True)
    return 0


# -- parent side: simulator, render, alternating runs -------------------------------------------------------------


def cpu_plan() -> tuple[set[int] | None, set[int] | None]:
    """One CPU for the simulator, another for the measured copy (None, None with fewer than two CPUs)."""
    cpus = sorted(os.sched_getaffinity(0))
    return ({cpus[0]}, {cpus[1]}) if len(cpus) >= 2 else (None, None)


@contextmanager
def on_cpus(cpus: set[int] | None) -> Iterator[None]:
    """Processes started inside this block inherit ``cpus`` as their CPU affinity."""
    if cpus is None:
        yield
        return
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


def start_simulator(size: int) -> tuple[subprocess.Popen[str], str]:
    """The simulator CLI in its own process; returns it and its API base URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_luma.testing",
            "--video-size-bytes",
            str(size),
            "--time-factor",
            "0.01",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if "listening on" in line:
            return proc, line.rsplit(" ", 1)[-1].strip()
    proc.kill()
    raise RuntimeError(f"the simulator did not start (exit code {proc.poll()})")


def stop_simulator(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def render_video_url(base_url: str) -> str:
    """Submit one render to the simulator and wait for its presigned video URL."""
    from airflow_provider_luma.core.http import ClientSettings, LumaClient
    from airflow_provider_luma.core.jobs import JobStatus as GenerationStatus
    from airflow_provider_luma.core.specs.generate import VideoRequest
    from airflow_provider_luma.testing import DEFAULT_TEST_API_KEY

    with LumaClient(ClientSettings(base_url=base_url, api_key=DEFAULT_TEST_API_KEY)) as client:
        request_id = client.submit(VideoRequest.from_params(prompt="bench")).request_id
        deadline = time.monotonic() + RENDER_TIMEOUT
        while time.monotonic() < deadline:
            generation = client.get_generation(request_id)
            if generation.status is GenerationStatus.SUCCESS and generation.video_url:
                return generation.video_url
            if generation.status.is_terminal:
                raise RuntimeError(f"render ended {generation.status}")
            time.sleep(0.2)
    raise RuntimeError("render did not finish in time")


def run_child(mode: str, url: str, dest: Path, size: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", mode, url, str(dest), "--size-bytes", str(size)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def mb(kib: float) -> float:
    return kib * 1024 / MB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=512, help="video size in MiB (default 512)")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each mode (default 5)")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "URL", "DEST"), help=argparse.SUPPRESS)
    parser.add_argument("--size-bytes", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, url, dest = args.child
        return child(mode, url, dest, args.size_bytes)

    size = args.size_mb * MIB
    workdir = Path(tempfile.mkdtemp(prefix="luma-bench-download-"))
    simulator: subprocess.Popen[str] | None = None
    runs: dict[str, list[dict[str, Any]]] = {"raw": [], "provider": []}
    try:
        server_cpus, copy_cpus = cpu_plan()
        with on_cpus(server_cpus):
            simulator, base_url = start_simulator(size)
        url = render_video_url(base_url)
        print(f"video: {size:,} bytes ({args.size_mb} MiB) from the simulator on loopback, {args.rounds} runs each")
        if server_cpus and copy_cpus:
            print(f"CPU affinity: simulator on CPU {min(server_cpus)}, measured copy on CPU {min(copy_cpus)}")
        else:
            print("CPU affinity: fewer than two CPUs, simulator and copy share them (expect noisier figures)")
        print(f"{'run':<12} {'seconds':>8} {'MiB/s':>8} {'RSS before':>11} {'peak':>9} {'growth':>8}  (MB)")
        for index in range(args.rounds):
            for mode in ("raw", "provider"):
                dest = workdir / f"{mode}-{index}.mp4"
                with on_cpus(copy_cpus):
                    result = run_child(mode, url, dest, size)
                for leftover in workdir.iterdir():
                    leftover.unlink()
                runs[mode].append(result)
                print(
                    f"{mode + ' ' + str(index + 1):<12} {result['seconds']:8.2f} {result['mib_s']:8.0f}"
                    f" {mb(result['rss_before_kib']):11.1f} {mb(result['peak_kib']):9.1f}"
                    f" {mb(result['growth_kib']):8.1f}"
                    + ("" if result["peak_reset"] else "  (peak not reset: includes import peak)")
                )
    finally:
        if simulator is not None:
            stop_simulator(simulator)
        shutil.rmtree(workdir, ignore_errors=True)

    raw_rate = statistics.median(r["mib_s"] for r in runs["raw"])
    ours_rate = statistics.median(r["mib_s"] for r in runs["provider"])
    ratio = ours_rate / raw_rate
    ours_growth = [mb(r["growth_kib"]) for r in runs["provider"]]
    raw_growth = [mb(r["growth_kib"]) for r in runs["raw"]]
    ratio_ok = ratio >= TARGET_RATIO
    rss_ok = max(ours_growth) <= TARGET_RSS_MB
    print(f"median throughput: raw {raw_rate:.0f} MiB/s, provider {ours_rate:.0f} MiB/s")
    raw_rates = [r["mib_s"] for r in runs["raw"]]
    if max(raw_rates) > NOISY_SPREAD * min(raw_rates):
        print(f"warning: raw runs range {min(raw_rates):.0f}-{max(raw_rates):.0f} MiB/s; is the machine busy?")
    print(f"ratio provider / raw: {ratio:.2f}   target >= {TARGET_RATIO:.2f}: {'PASS' if ratio_ok else 'MISS'}")
    best = max(r["mib_s"] for r in runs["provider"]) / max(raw_rates)
    print(f"best-of-runs ratio (fastest provider / fastest raw): {best:.2f}")
    print(
        f"peak RSS growth, provider: median {statistics.median(ours_growth):.1f} MB, max {max(ours_growth):.1f} MB"
        f"   target <= {TARGET_RSS_MB:.0f} MB: {'PASS' if rss_ok else 'MISS'}"
    )
    print(
        f"peak RSS growth, raw (for comparison): median {statistics.median(raw_growth):.1f} MB,"
        f" max {max(raw_growth):.1f} MB"
    )
    ok = ratio_ok and rss_ok
    print(f"RESULT download ratio={ratio:.2f} rss_growth_mb={max(ours_growth):.1f} ok={ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
