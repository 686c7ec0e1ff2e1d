"""CPU per status poll of the async client alone: the h11 poll transport against httpx's own pool.

A server in another process answers every ``GET`` with the same small JSON status (HTTP/1.1 keep-alive, so the
server's CPU is not counted); this process runs ``--polls`` ``AsyncLumaClient.aget_generation`` calls,
``--concurrency`` at a time, and reports its own CPU seconds per poll for:

* ``poll-transport``: the provider's client as it runs in the triggerer (``PollTransport``: h11 keep-alive GETs);
* ``httpx-pool``: the same client with httpx's default ``AsyncHTTPTransport`` (what polls went through before the
  lean path), as the reference point.

Each variant runs ``--rounds`` times, alternating, in a fresh child process; the figures are the per-variant
minimum and median, and the ratio of the medians.

    python benchmarks/poll_client.py [--polls 2000] [--concurrency 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BODY = json.dumps({"request_id": "r1", "status": "processing", "model": "luma-ray-3-2-generate"}).encode()
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
BASE_PATH = "/api/v1/ie/requestqueue/apikey"


async def serve(port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(ANSWER)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(port: int, variant: str, polls: int, concurrency: int) -> dict[str, float]:
    import httpx

    from airflow_provider_luma.core.http import AsyncLumaClient, ClientSettings

    settings = ClientSettings(base_url=f"http://127.0.0.1:{port}{BASE_PATH}", api_key="bench-key-0123456789")
    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=64)) if variant == "httpx-pool" else None
    async with AsyncLumaClient(settings, transport=transport) as client:
        for _ in range(concurrency):  # warm up: connections open, modules imported
            await client.aget_generation("r1")
        done = 0

        async def worker() -> None:
            nonlocal done
            while done < polls:
                done += 1
                await client.aget_generation("r1")

        started_cpu, started = cpu(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        used, wall = cpu() - started_cpu, time.perf_counter() - started
    return {"cpu_ms_per_poll": 1000 * used / polls, "polls_per_s": polls / wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--polls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("PORT", "VARIANT"), help=argparse.SUPPRESS)
    parser.add_argument("--server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.server:
        asyncio.run(serve(args.server))
        return 0
    if args.child:
        result = asyncio.run(measure(int(args.child[0]), args.child[1], args.polls, args.concurrency))
        print(json.dumps(result))
        return 0

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, __file__, "--server", str(port)], cwd=ROOT)
    try:
        time.sleep(1.0)
        results: dict[str, list[dict[str, float]]] = {"poll-transport": [], "httpx-pool": []}
        for _ in range(args.rounds):
            for variant in results:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(port), variant, "--polls", str(args.polls),
                     "--concurrency", str(args.concurrency)],
                    capture_output=True, text=True, check=True, cwd=ROOT,
                )  # fmt: skip
                results[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{args.polls} polls, {args.concurrency} at a time, {args.rounds} rounds per variant (alternating)")
        medians = {}
        for variant, rounds in results.items():
            cpu_ms = [r["cpu_ms_per_poll"] for r in rounds]
            rate = [r["polls_per_s"] for r in rounds]
            medians[variant] = statistics.median(cpu_ms)
            print(
                f"{variant:<15} CPU per poll: min {min(cpu_ms):.3f} ms, median {medians[variant]:.3f} ms;"
                f" {statistics.median(rate):,.0f} polls/s"
            )
        ratio = medians["poll-transport"] / medians["httpx-pool"]
        print(f"ratio poll-transport / httpx-pool (median CPU per poll): {ratio:.2f}")
        return 0
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    raise SystemExit(main())
