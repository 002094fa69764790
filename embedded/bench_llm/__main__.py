"""Run the benchmark: `python -m embedded.bench_llm [--json] [--duration 50] [--loads 0.5,1,2] [--clients ...]`."""

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from embedded.simpool import SimBackendSpec, SimServer

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("driver.py")
BENCH_VENV = ROOT / ".cache" / "bench-venv"
LOGS = ROOT / ".cache" / "bench-logs"
PEER_PINS = ("litellm==1.110.2", "openai-priority-loadbalancer==1.1.1")
CLIENTS = ("ours", "priority-lb", "litellm", "single")
PEERS = {"priority-lb", "litellm"}
HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
API_VERSION = "2024-10-21"


@dataclass(frozen=True)
class Scenario:
    duration_s: float = 50.0
    down: tuple[float, float] = (15.0, 35.0)
    """tier 1 answers 503 during this window of the run"""
    timeout_s: float = 3.0
    deadline_s: float = 20.0
    attempts: int = 4
    window_s: float = 10.0
    p_5xx: float = 0.02
    p_hang: float = 0.01

    def specs(self) -> list[SimBackendSpec]:
        common: dict[str, Any] = {"style": "azure", "deployment": "bench", "window_s": self.window_s, "p_5xx": self.p_5xx,
                  "p_hang": self.p_hang, "hang_s": 60.0, "timeout_s": self.timeout_s}
        return [
            SimBackendSpec(name="ptu", api_key="k-ptu", rpm=300, latency_ms=250, retry_after_style="ms",
                           priority=1, down_windows=[self.down], seed=11, **common),
            SimBackendSpec(name="paygo-a", api_key="k-a", rpm=150, latency_ms=400, retry_after_style="seconds",
                           priority=2, seed=12, **common),
            SimBackendSpec(name="paygo-b", api_key="k-b", rpm=150, latency_ms=350, retry_after_style="seconds",
                           priority=2, seed=13, **common),
        ]

    def up_intervals(self, spec: SimBackendSpec, end: float) -> list[tuple[float, float]]:
        cuts = [(0.0, end)]
        for a, b in spec.down_windows:
            cuts = [part for lo, hi in cuts for part in ((lo, min(hi, a)), (max(lo, b), hi)) if part[1] > part[0]]
        return cuts

    def capacity(self, spec: SimBackendSpec, end: float) -> float:
        """Requests the backend can accept in [0, end): in each stretch it is up, its sliding window's limit
        once per window length begun (a full window at the start of the stretch, another each `window_s`)."""
        return sum(self.stretch_capacity(spec, lo, hi) for lo, hi in self.up_intervals(spec, end))

    def stretch_capacity(self, spec: SimBackendSpec, lo: float, hi: float) -> float:
        assert spec.rpm
        return math.floor(spec.rpm * spec.window_s / 60) * math.ceil((hi - lo) / spec.window_s - 1e-9)

    def rate(self) -> float:
        """The pool's capacity in requests/s, averaged over the run (the down window included)."""
        specs = self.specs()
        return sum((s.rpm or 0) / 60 * sum(hi - lo for lo, hi in self.up_intervals(s, self.duration_s))
                   for s in specs) / self.duration_s


@dataclass
class Row:
    client: str
    load: float
    goodput_ratio: float
    errors_surfaced: int
    wasted_calls: int
    p50_s: float
    p99_s: float
    tier1_share: float


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ensure_bench_venv() -> Path:
    """The peers' venv: created and filled on first use, refilled when the pins change."""
    python = BENCH_VENV / "bin" / "python"
    marker = BENCH_VENV / "pins.txt"
    if python.exists() and marker.exists() and marker.read_text().split() == list(PEER_PINS):
        return python
    say(f"bench: installing {', '.join(PEER_PINS)} into {BENCH_VENV.relative_to(ROOT)} (first run only)")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(BENCH_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PINS], check=True)
    marker.write_text("\n".join(PEER_PINS))
    return python


class Pool:
    """One copy of the simulated pool: its backends share a port on three loopback addresses, because
    openai-priority-loadbalancer tells backends apart by host only."""

    def __init__(self, specs: Sequence[SimBackendSpec]) -> None:
        self.servers = [SimServer(spec, host) for spec, host in zip(specs, HOSTS, strict=False)]

    async def __aenter__(self) -> "Pool":
        await self.servers[0].start()
        for server in self.servers[1:]:
            server.port = self.servers[0].port
            await server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(s.stop() for s in self.servers), return_exceptions=True)

    def backends(self) -> list[dict[str, Any]]:
        return [{"name": s.spec.name, "base_url": s.base_url, "deployment": s.spec.deployment,
                 "api_key": s.spec.api_key, "api_version": API_VERSION, "priority": s.spec.priority,
                 "rpm": s.spec.rpm} for s in self.servers]

    def start_clock(self, start_at: float) -> None:
        for s in self.servers:
            s.reset()
            s.started = time.monotonic() + (start_at - time.time())


class Driver:
    def __init__(self, client: str, cfg: dict[str, Any], python: Path) -> None:
        self.client, self.cfg, self.python = client, cfg, python
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        LOGS.mkdir(parents=True, exist_ok=True)
        with open(LOGS / f"{self.client}.log", "ab") as log:  # the driver's stderr, for a post-mortem
            self.proc = await asyncio.create_subprocess_exec(
                str(self.python), str(DRIVER), json.dumps({"client": self.client, **self.cfg}), cwd=ROOT, env=env,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log, limit=64 * 1024 * 1024)
        await asyncio.wait_for(self._line(), 180)

    async def _line(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                raise RuntimeError(f"driver {self.client} exited with {await self.proc.wait()}")
            if raw.startswith(b"{"):
                out: dict[str, Any] = json.loads(raw)
                return out

    async def run(self, order: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(order) + "\n").encode())
        await self.proc.stdin.drain()
        try:
            out = await asyncio.wait_for(self._line(), timeout_s)
        except TimeoutError:
            raise RuntimeError(f"driver {self.client} gave no result within {timeout_s:.0f} s "
                               f"(see {LOGS.relative_to(ROOT)}/{self.client}.log)") from None
        await self.proc.wait()
        return out

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def score(sc: Scenario, client: str, load: float, offered: int, out: dict[str, Any],
          stats: dict[str, dict[str, int]]) -> Row:
    records = out["records"]
    ok = [r for r in records if r[2]]
    end = sc.duration_s + sc.deadline_s  # every client had until then to answer: failing fast earns nothing
    specs = sc.specs()
    capacity = sum(sc.capacity(s, end) for s in specs)
    tier1 = next(s for s in specs if s.priority == 1)
    requests = sum(s["requests"] for s in stats.values())
    return Row(
        client=client, load=load,
        goodput_ratio=round(len(ok) / min(offered, capacity), 3),
        errors_surfaced=offered - len(ok),
        wasted_calls=max(0, requests - len(ok)),
        p50_s=round(percentile([r[1] for r in ok], 0.50), 3),
        p99_s=round(percentile([r[1] for r in ok], 0.99), 3),
        tier1_share=round(min(1.0, stats[tier1.name]["ok"] / max(1.0, tier1_could(sc, tier1, records, end))), 3),
    )


def tier1_could(sc: Scenario, tier1: SimBackendSpec, records: list[list[Any]], end: float) -> float:
    """How many answers tier 1 could have given: in each stretch it was up, the requests that arrived
    then, up to its capacity in that stretch."""
    total = 0.0
    for lo, hi in sc.up_intervals(tier1, end):
        arrived = sum(1 for r in records if lo <= r[0] < hi)
        total += min(arrived, sc.stretch_capacity(tier1, lo, hi))
    return total


async def run_load(sc: Scenario, load: float, clients: Sequence[str], pythons: dict[str, Path],
                   seed: int) -> list[Row]:
    rng = random.Random(seed)
    arrivals, t = [], rng.expovariate(load * sc.rate())
    while t < sc.duration_s:
        arrivals.append(round(t, 4))
        t += rng.expovariate(load * sc.rate())
    pools = [Pool(sc.specs()) for _ in clients]
    drivers: list[Driver] = []
    try:
        for pool in pools:
            await pool.__aenter__()
        cfg = {"deadline_s": sc.deadline_s, "timeout_s": sc.timeout_s, "attempts": sc.attempts}
        drivers = [Driver(c, {**cfg, "backends": p.backends()}, pythons[c]) for c, p in zip(clients, pools,
                                                                                            strict=True)]
        await asyncio.gather(*(d.start() for d in drivers))
        start_at = time.time() + 1.0
        for pool in pools:
            pool.start_clock(start_at)
        order = {"mode": "load", "start_at": start_at, "arrivals": arrivals}
        results = await asyncio.gather(*(d.run(order, sc.duration_s + sc.deadline_s + 60) for d in drivers),
                                       return_exceptions=True)
        outs: list[dict[str, Any]] = []
        for client, got in zip(clients, results, strict=True):
            if isinstance(got, BaseException):  # a client that never answered: every request failed
                say(f"bench: {client} at {load:g}x did not finish: {got}")
                got = {"records": [[a, sc.deadline_s, False] for a in arrivals], "errors": {"no result": 1}}
            outs.append(got)
        for client, out in zip(clients, outs, strict=True):
            if out.get("stuck_after_cancel"):
                say(f"bench: {client} kept {out['stuck_after_cancel']} calls running after their deadline")
            if out.get("errors"):
                say(f"bench: {client} at {load:g}x surfaced {out['errors']}")
                if client == "ours":
                    for sample in out.get("error_samples", []):
                        say("  " + sample.replace("\n", "\n  "))
        return [score(sc, c, load, len(arrivals), out, {s.spec.name: dict(s.stats) for s in pool.servers})
                for c, out, pool in zip(clients, outs, pools, strict=True)]
    finally:
        for d in drivers:
            d.kill()
        for pool in pools:
            await pool.__aexit__()


async def run_overhead(client: str, python: Path, pairs: int) -> float:
    spec = SimBackendSpec(name="zero", style="azure", deployment="bench", api_key="k-zero", latency_ms=0, jitter=0,
                          priority=1)
    async with Pool([spec]) as pool:
        driver = Driver(client, {"deadline_s": 30, "timeout_s": 10, "attempts": 4, "backends": pool.backends()},
                        python)
        try:
            await driver.start()
            out = await driver.run({"mode": "overhead", "pairs": pairs}, 300)
        finally:
            driver.kill()
    diffs: list[float] = [c - r for c, r in zip(out["client_ms"], out["raw_ms"], strict=True)]
    return round(statistics.median(diffs), 3)


def table(sc: Scenario, rows: list[Row], overhead: dict[str, float]) -> str:
    lines = [f"scenario: {sc.duration_s:.0f} s per load, pool capacity {sc.rate():.1f} req/s averaged over the run "
             f"(tier 1 down {sc.down[0]:.0f}-{sc.down[1]:.0f} s), {sc.p_5xx:.0%} 5xx, {sc.p_hang:.0%} hangs, "
             f"timeout {sc.timeout_s:.0f} s, deadline {sc.deadline_s:.0f} s, {sc.attempts} attempts",
             "",
             "| client | load | goodput ÷ capacity | errors surfaced | wasted calls | p50 s | p99 s | tier-1 share |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.client} | {r.load:g}x | {r.goodput_ratio:.3f} | {r.errors_surfaced} | {r.wasted_calls} "
                     f"| {r.p50_s:.2f} | {r.p99_s:.2f} | {r.tier1_share:.2f} |")
    if overhead:
        lines += ["", "| client | added overhead per call vs raw httpx (median ms) |", "|---|---|"]
        lines += [f"| {c} | {ms:.3f} |" for c, ms in overhead.items()]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    sc = Scenario(duration_s=args.duration, down=(args.duration * 0.3, args.duration * 0.3 + 20.0))
    clients = [c.strip() for c in args.clients.split(",")]
    bad = [c for c in clients if c not in CLIENTS]
    if bad:
        raise SystemExit(f"unknown clients {bad}; choose from {', '.join(CLIENTS)}")
    peer_python = ensure_bench_venv() if PEERS & set(clients) else None
    pythons = {c: (peer_python if c in PEERS and peer_python else Path(sys.executable)) for c in clients}
    rows: list[Row] = []
    for i, load in enumerate(float(x) for x in args.loads.split(",")):
        say(f"bench: load {load:g}x ({load * sc.rate():.1f} req/s for {sc.duration_s:.0f} s), clients side by side")
        rows += await run_load(sc, load, clients, pythons, args.seed + i)
    overhead: dict[str, float] = {}
    for client in clients if args.pairs else ():
        say(f"bench: overhead of {client} against a zero-latency backend ({args.pairs} pairs)")
        overhead[client] = await run_overhead(client, pythons[client], args.pairs)
    return {"runs": [asdict(r) for r in rows], "overhead_ms_median": overhead,
            "scenario": {**asdict(sc), "capacity_rps": round(sc.rate(), 2), "loads": args.loads,
                         "clients": clients, "seed": args.seed}}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="scripts/bench-llm", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--duration", type=float, default=50.0, help="seconds of arrivals per load (default 50)")
    parser.add_argument("--loads", default="0.5,1,2", help="multiples of the pool's capacity (default 0.5,1,2)")
    parser.add_argument("--clients", default=",".join(CLIENTS), help=f"default {','.join(CLIENTS)}")
    parser.add_argument("--pairs", type=int, default=400, help="overhead samples per client (0: skip)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    result = asyncio.run(main_async(args))
    say(f"bench: done in {time.monotonic() - t0:.0f} s")
    print(json.dumps(result, indent=2) if args.json else render(result))


def render(result: dict[str, Any]) -> str:
    """The table of a result (also for a saved `--json`)."""
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in result["scenario"].items()
                              if k in Scenario.__dataclass_fields__}
    return table(Scenario(**fields), [Row(**r) for r in result["runs"]], result["overhead_ms_median"])


if __name__ == "__main__":
    main()
