"""Triggerer capacity: N concurrent ``LumaGenerationTrigger.run()`` in one process and one event loop.

The simulator runs as a separate process (``python -m airflow_provider_luma.testing``) so its CPU is not counted.
Each phase runs in a fresh child process (clean RSS baseline) that:

1. submits N renders (render times 30-57 s, changed every 100 submissions so finishes are staggered; the
   simulator records each render's exact ``finishes_at``);
2. creates N triggers with ``poll_interval=10`` (plain 10-s polling, no expected time), first polls spread over
   the first 10 s, as triggers that arrived at different moments would be;
3. runs all ``run()`` generators concurrently in one event loop, plus a ticker task that sleeps 100 ms and records
   the overshoot (event-loop lag), and a sampler that reads ``VmRSS`` every 0.5 s.

Figures per phase: RSS growth (peak VmRSS during the run minus VmRSS just before the triggers were created), CPU
share (process user+system CPU seconds / wall seconds of the run), *steady* CPU share (the same, over the window
in which all N triggers are polling: every first poll is out and no render has finished; the whole-run share also
covers the tail in which renders drain away, so it is the lower of the two), loop lag max and p99, and detection
delay (the moment the trigger yielded its event minus the simulator's ``finishes_at``) p50/p99/max.
``BENCH_RENDER_BASE=S`` makes the renders S to S+27 s (default 30) and so the steady window longer.

Phases: ``shared`` (the provider: one pooled ``AsyncLumaClient`` per loop via ``LumaHook.ashared_client()``) at
1,000 and 5,000, and ``naive`` (a fresh ``AsyncLumaClient`` — new httpx client, new TCP connection — for every
status call) at 1,000.

CPU per status call = the phase's CPU seconds / the status GETs the simulator received. ``--profile FILE`` adds a
last phase (the largest size, shared pool) under pyinstrument (1-ms sampling of the event-loop thread; its
figures are inflated by the profiler and not judged) and writes the call tree to FILE; a FILE ending in
``.pstats.txt`` gets cProfile's functions by own time instead (call counts; larger overhead).
``BENCH_MAX_CONNECTIONS=N`` runs the phases with a shared pool of N connections instead of the client's default.

    python benchmarks/triggerer_capacity.py [--sizes 1000,5000] [--naive 1000] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
POLL = 10.0
TARGETS = {"rss_mb": 100.0, "cpu_pct": 30.0, "lag_p99_ms": 50.0, "delay_p99_s": POLL + 2.0}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# ---------------------------------------------------------------------------------------------------- child phase
async def _phase(n: int, variant: str, admin: str) -> dict[str, Any]:
    import httpx

    from airflow_provider_luma.core.http import AsyncLumaClient
    from airflow_provider_luma.core.specs.generate import VideoRequest
    from airflow_provider_luma.hooks import LumaHook
    from airflow_provider_luma.triggers import POLL_RETRY, LumaGenerationTrigger

    class ClientPerPoll:
        """The naive variant: a new client (pool, TCP connection) for every status call."""

        def __init__(self, settings: Any) -> None:
            self.settings = settings

        async def aget_generation(self, request_id: str, model: str | None = None) -> Any:
            client = AsyncLumaClient(self.settings)
            try:
                return await client.aget_generation(request_id, model)
            finally:
                await client.aclose()

    class NaiveTrigger(LumaGenerationTrigger):
        async def run(self) -> Any:  # type: ignore[override]
            from airflow.triggers.base import TriggerEvent

            settings = await LumaHook(self.luma_conn_id, retry_policy=POLL_RETRY).aget_settings()
            yield TriggerEvent(await self._poll(ClientPerPoll(settings)))  # type: ignore[arg-type]

    if os.environ.get("BENCH_MAX_CONNECTIONS"):  # experiment: a smaller shared pool than the client's default
        import functools

        size = int(os.environ["BENCH_MAX_CONNECTIONS"])
        AsyncLumaClient.__init__ = functools.partialmethod(AsyncLumaClient.__init__, max_connections=size)  # type: ignore[method-assign]
    async with httpx.AsyncClient(base_url=admin, timeout=30) as sim:
        await sim.post("/reset")
        hook = LumaHook()
        request_ids: list[str] = []
        sem = asyncio.Semaphore(32)

        async def submit(i: int) -> None:
            async with sem:
                generation = await hook.asubmit_generation(VideoRequest.from_params(prompt=f"capacity {i}"))
                request_ids.append(generation.request_id)

        for batch in range(0, n, 100):
            await sim.post(
                "/config",
                json={"render_seconds": float(os.environ.get("BENCH_RENDER_BASE", "30")) + 3.0 * ((batch // 100) % 10)},
            )
            await asyncio.gather(*(submit(i) for i in range(batch, min(n, batch + 100))))
        finishes = {g["request_id"]: g["finishes_at"] for g in (await sim.get("/generations")).json()["generations"]}

    import gc

    gc.collect()
    rss0, cpu0, wall0 = rss_mb(), cpu_seconds(), time.time()
    cls = NaiveTrigger if variant == "naive" else LumaGenerationTrigger
    rng = random.Random(1)
    triggers = [
        cls(request_id=rid, deadline=wall0 + 600, poll_interval=POLL, first_poll_at=wall0 + rng.uniform(0, POLL),
            submitted_at=wall0)
        for rid in request_ids
    ]  # fmt: skip
    delays: list[float] = []
    statuses: dict[str, int] = {}
    lags: list[float] = []
    samples: list[tuple[float, float, int]] = []  # (seconds into the run, CPU seconds, triggers still running)
    rss_peak = rss0
    done = asyncio.Event()

    async def one(trigger: LumaGenerationTrigger) -> None:
        async for event in trigger.run():
            delays.append(time.time() - finishes[trigger.request_id])
            statuses[event.payload["status"]] = statuses.get(event.payload["status"], 0) + 1

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while not done.is_set():
            start = loop.time()
            await asyncio.sleep(0.1)
            lags.append(loop.time() - start - 0.1)

    async def sampler() -> None:
        nonlocal rss_peak
        while not done.is_set():
            rss_peak = max(rss_peak, rss_mb())
            samples.append((time.time() - wall0, cpu_seconds() - cpu0, n - len(delays)))
            await asyncio.sleep(0.5)

    side = [asyncio.create_task(ticker()), asyncio.create_task(sampler())]
    await asyncio.gather(*(one(t) for t in triggers))
    wall = time.time() - wall0
    cpu = cpu_seconds() - cpu0
    rss_peak = max(rss_peak, rss_mb())
    done.set()
    await asyncio.gather(*side)
    async with httpx.AsyncClient(base_url=admin, timeout=60) as sim:
        log = (await sim.get("/requests")).json()
    entries = log["requests"] if isinstance(log, dict) else log
    polls = sum(1 for e in entries if e["method"] == "GET" and "/requests/" in e["path"])
    # Steady state: every trigger is polling (first polls spread over the first POLL seconds are all out) and
    # none has finished yet; the whole-run figure above also covers the tail where renders drain away.
    steady = [s for s in samples if s[0] >= POLL and s[2] == n]
    steady_cpu = (steady[-1][1] - steady[0][1]) / (steady[-1][0] - steady[0][0]) if len(steady) > 2 else float("nan")
    return {
        "steady_cpu_pct": round(100 * steady_cpu, 1),
        "steady_s": round(steady[-1][0] - steady[0][0], 1) if len(steady) > 2 else 0.0,
        "variant": variant,
        "n": n,
        "events": statuses,
        "wall_s": round(wall, 1),
        "rss_growth_mb": round(rss_peak - rss0, 1),
        "cpu_pct": round(100 * cpu / wall, 1),
        "lag_max_ms": round(1000 * max(lags), 1),
        "lag_p99_ms": round(1000 * pct(lags, 0.99), 1),
        "delay_p50_s": round(pct(delays, 0.5), 2),
        "delay_p99_s": round(pct(delays, 0.99), 2),
        "delay_max_s": round(max(delays), 2),
        "polls": polls,
        "cpu_ms_per_poll": round(1000 * cpu / max(polls, 1), 3),
    }


def child(n: int, variant: str, admin: str) -> int:
    logging.disable(logging.WARNING)  # the triggers' INFO state-change lines would dominate the CPU figure
    profile = os.environ.get("BENCH_PROFILE")  # write a pyinstrument profile of the phase there
    if not profile:
        print(json.dumps(asyncio.run(_phase(n, variant, admin))), flush=True)
        return 0
    if profile.endswith(".pstats.txt"):  # deterministic: per-function own time and call counts
        import cProfile
        import io
        import pstats

        cprofiler = cProfile.Profile()
        result = cprofiler.runcall(asyncio.run, _phase(n, variant, admin))
        out = io.StringIO()
        stats = pstats.Stats(cprofiler, stream=out)
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats("airflow_provider_luma|structlog|_assign_requests", 30)
        stats.print_callers("builtins.compile|has_expired|extra_attributes")
        Path(profile).write_text(out.getvalue())
    else:
        from pyinstrument import Profiler

        # The event loop runs every trigger on this thread: sampling it attributes all of the loop's CPU.
        profiler = Profiler(interval=0.001, async_mode="disabled")
        profiler.start()
        result = asyncio.run(_phase(n, variant, admin))
        profiler.stop()
        Path(profile).write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    print(json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------------------------------------------- parent
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def verdict(result: dict[str, Any]) -> str:
    ok = (
        result["rss_growth_mb"] <= TARGETS["rss_mb"]
        and result["cpu_pct"] <= TARGETS["cpu_pct"]
        and not result["steady_cpu_pct"] > TARGETS["cpu_pct"]  # NaN (no steady window) does not fail
        and result["lag_p99_ms"] <= TARGETS["lag_p99_ms"]
        and result["delay_p99_s"] <= TARGETS["delay_p99_s"]
    )
    return "PASS" if ok else "MISS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000", help="shared-pool phases")
    parser.add_argument("--naive", default="1000", help="naive (client per poll) phases")
    parser.add_argument("--profile", metavar="FILE", help="also profile a shared phase of the last size into FILE")
    parser.add_argument("--child", nargs=3, metavar=("N", "VARIANT", "ADMIN_URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(int(args.child[0]), args.child[1], args.child[2])

    port = free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_luma.testing", "--port", str(port), "--render-seconds", "30"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        conn = ""
        assert sim.stdout is not None
        for line in sim.stdout:
            if line.startswith("export AIRFLOW_CONN_LUMA_DEFAULT="):
                conn = line.split("=", 1)[1].strip().strip("'")
                break
        env = {**os.environ, "AIRFLOW_CONN_LUMA_DEFAULT": conn}
        admin = f"http://127.0.0.1:{port}/_sim"
        phases = [(int(n), "shared") for n in args.sizes.split(",") if n]
        phases[1:1] = [(int(n), "naive") for n in args.naive.split(",") if n]
        if args.profile:
            phases.append((phases[-1][0], "profiled"))
        print(f"simulator pid {sim.pid} on port {port}; poll_interval {POLL:.0f} s; renders 30-57 s")
        print(
            f"targets: RSS growth <= {TARGETS['rss_mb']:.0f} MB, CPU <= {TARGETS['cpu_pct']:.0f} % of one core, "
            f"loop lag p99 <= {TARGETS['lag_p99_ms']:.0f} ms, detection delay p99 <= {TARGETS['delay_p99_s']:.0f} s"
        )
        header = f"{'variant':<8} {'N':>5} {'wall s':>7} {'RSS +MB':>8} {'CPU %':>6} {'steady':>6} {'lag max':>8}"
        print(header + f" {'lag p99':>8} {'delay p50':>9} {'p99':>6} {'max':>6}  events")
        failures = 0
        for n, variant in phases:
            child_env = {**env, "BENCH_PROFILE": args.profile} if variant == "profiled" else env
            proc = subprocess.run(
                [sys.executable, __file__, "--child", str(n), "shared" if variant == "profiled" else variant, admin],
                env=child_env, capture_output=True, text=True, cwd=ROOT, check=False,
            )  # fmt: skip
            if proc.returncode != 0:
                print(f"{variant} N={n} failed:\n{proc.stderr[-3000:]}")
                failures += 1
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(
                f"{variant:<8} {n:>5} {r['wall_s']:>7.1f} {r['rss_growth_mb']:>8.1f} {r['cpu_pct']:>6.1f}"
                f" {r['steady_cpu_pct']:>6.1f}"
                f" {r['lag_max_ms']:>6.0f}ms {r['lag_p99_ms']:>6.0f}ms {r['delay_p50_s']:>8.1f}s"
                f" {r['delay_p99_s']:>5.1f}s {r['delay_max_s']:>5.1f}s  {r['events']}  {verdict(r)}"
                f"  ({r['polls']} status calls, {r['cpu_ms_per_poll']:.2f} ms CPU each; steady window"
                f" {r['steady_s']:.0f} s)",
                flush=True,
            )
            failures += variant == "shared" and n <= 1000 and verdict(r) != "PASS"
        print("RESULT:", "PASS" if not failures else "MISS")
        return 1 if failures else 0
    finally:
        sim.terminate()
        sim.wait(timeout=15)


if __name__ == "__main__":
    raise SystemExit(main())
