"""The live part of the benchmark: Azurite, a simulated pool of known capacity, and the flows run through the
local runner exactly as the demo runs them (every step a fresh Python process)."""

import asyncio
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedded.azurite import ROOT, Azurite, start_azurite
from embedded.runner import Workspace, run_flow
from embedded.runner.jobs import Job, Jobs
from embedded.services import BLOB_VARIABLE, CONTAINER
from embedded.simpool import SimBackendSpec
from f.core.layout import DocPaths, MatterPaths
from f.core.models import CallRecord, ChunkPlan
from f.core.storage import BlobStore, open_store
from f.pipeline.sources import add_source

LOGS = ROOT / ".cache" / "bench" / "logs"
STORE = "$res:f/matter/store"


# ------------------------------------------------------------------ the pool


@dataclass(frozen=True)
class PoolPlan:
    """Backends whose capacity is set by their rate limit: the server admits `rpm / 60 * window_s` requests in
    any `window_s` (a sliding window, answering 429 with retry-after-ms beyond it), so together they serve at
    most `capacity` calls per second however many clients call them, and latency only adds to the last call."""

    backends: int = 2
    rpm: int = 600
    window_s: float = 1.0
    latency_ms: float = 150.0
    max_inflight: int = 8

    @property
    def capacity(self) -> float:
        """Calls per second the pool can serve."""
        return self.backends * self.rpm / 60.0

    def specs(self) -> list[SimBackendSpec]:
        return [
            SimBackendSpec(name=f"sim{i}", style="openai", deployment="bench-model", latency_ms=self.latency_ms,
                           jitter=0.2, rpm=self.rpm, window_s=self.window_s, retry_after_style="ms", seed=i + 1,
                           priority=1, weight=1.0, max_inflight=self.max_inflight, timeout_s=20.0)
            for i in range(self.backends)
        ]


FAST_POOL = PoolPlan(backends=2, rpm=60_000, window_s=1.0, latency_ms=40.0, max_inflight=16)
"""For the memory runs, where capacity does not matter: 2000 calls/s, far above what the jobs can send."""


class SimPool:
    """`python -m embedded.simpool` in its own process, so the model's CPU never competes with the runner's loop."""

    def __init__(self, plan: PoolPlan) -> None:
        self.plan = plan
        self.proc: subprocess.Popen[bytes] | None = None
        self.resource: dict[str, Any] = {}
        self.stats_urls: list[str] = []

    def __enter__(self) -> "SimPool":
        LOGS.mkdir(parents=True, exist_ok=True)
        config = Path(tempfile.mkstemp(prefix="simpool-", suffix=".json", dir=LOGS)[1])
        config.write_text(json.dumps([s.model_dump() for s in self.plan.specs()]))
        log = open(LOGS / f"simpool-{os.getpid()}.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "embedded.simpool", "--config", str(config)], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        assert self.proc.stdout
        line = self.proc.stdout.readline()
        config.unlink(missing_ok=True)
        if not line:
            raise RuntimeError(f"the simulated pool did not start; see {log.name}")
        ready = json.loads(line)
        self.resource = ready["llm_pool"] | {"deadline_s": 120.0}
        self.stats_urls = [b["stats_url"] for b in ready["backends"]]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def stats(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for url in self.stats_urls:
            with urllib.request.urlopen(url, timeout=10) as r:
                for k, v in json.load(r).items():
                    if isinstance(v, int):
                        total[k] = total.get(k, 0) + v
        return total

    def reset(self) -> None:
        for url in self.stats_urls:
            req = urllib.request.Request(url.removesuffix("/stats") + "/stats/reset", method="POST", data=b"")
            urllib.request.urlopen(req, timeout=10).close()

    def cpu_s(self) -> float:
        return proc_cpu_s(self.proc.pid) if self.proc else 0.0


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (its own, not its children's)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_s() -> float:
    """CPU seconds the whole machine has been busy (all processes, everyone's), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_now(azurite: Azurite, pool: "SimPool") -> dict[str, float]:
    """CPU seconds so far: the finished child processes of this one (the job processes, with their pool workers
    and tesseracts), this one (the runner, its local API and V8), Azurite, and the simulated pool."""
    kids, me = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    return {"jobs": kids.ru_utime + kids.ru_stime, "runner": me.ru_utime + me.ru_stime,
            "azurite": proc_cpu_s(azurite.process.pid), "sim_pool": pool.cpu_s()}


# ------------------------------------------------------------------ runs


@dataclass
class FlowRun:
    seconds: float
    result: Any
    jobs: list[Job]
    cpu: dict[str, float]  # CPU seconds of the jobs, the runner, Azurite and the simulated pool in this run
    llm: dict[str, int] = field(default_factory=dict)  # the simulated servers' counters for this run
    machine_cpu_s: float = 0.0  # everything the machine ran meanwhile, other people's processes included

    @property
    def cpu_s(self) -> float:
        return sum(self.cpu.values())

    def steps(self, module: str) -> list[Job]:
        return [j for j in self.jobs if j.kind == "script" and j.path == module]

    def step_seconds(self, module: str) -> float:
        """Wall time from the first start to the last finish of that script's jobs."""
        found = self.steps(module)
        if not found:
            return 0.0
        start = min(j.started_at for j in found if j.started_at)
        end = max(j.finished_at for j in found if j.finished_at)
        return (end - start).total_seconds()

    def result_sizes(self) -> list[tuple[str, int]]:
        """(label, bytes of the JSON result) of every job: scripts, and flows (whose result is their last step's)."""
        return [(j.label, len(json.dumps(j.result))) for j in self.jobs if j.done]

    def loop_sizes(self) -> list[tuple[str, int]]:
        """For-loop results: the list of their iterations' results (each iteration's last step), by loop label."""
        loops: dict[str, dict[int, Job]] = {}
        for j in self.jobs:
            found = _ITERATION_STEP.match(j.label)
            if j.done and found:
                last = loops.setdefault(found["loop"], {}).get(int(found["index"]))
                if last is None or (j.finished_at and last.finished_at and j.finished_at > last.finished_at):
                    loops[found["loop"]][int(found["index"])] = j
        return [(loop, len(json.dumps([runs[i].result for i in sorted(runs)]))) for loop, runs in loops.items()]


_ITERATION_STEP = re.compile(r"^(?P<loop>.*)\[(?P<index>\d+)\]\.[^.\[\]]+$")


@dataclass
class Bench:
    azurite: Azurite
    pool: SimPool
    workers: int
    ws: Workspace = field(init=False)

    def __post_init__(self) -> None:
        self.ws = Workspace(ROOT, env="local", variables={BLOB_VARIABLE: self.azurite.connection_string})

    @property
    def store_config(self) -> dict[str, Any]:
        return {"container": CONTAINER, "connection_string": self.azurite.connection_string}

    @asynccontextmanager
    async def store(self, matter_id: str) -> AsyncIterator[BlobStore]:
        async with open_store(self.store_config, MatterPaths(matter_id).prefix) as store:
            yield store

    async def upload(self, matter_id: str, files: dict[str, Path]) -> None:
        async with self.store(matter_id) as store:
            for doc_id, path in files.items():
                await add_source(store, MatterPaths(matter_id).doc(doc_id), path.read_bytes(), path.name)

    async def run(self, flow: str, args: dict[str, Any]) -> FlowRun:
        """One flow through the local runner, timed; the pool's counters and the CPU used are for this run only."""
        self.pool.reset()
        jobs = Jobs()
        cpu0, machine0 = cpu_now(self.azurite, self.pool), machine_cpu_s()
        t0 = time.perf_counter()
        result = await run_flow(self.ws, flow, {"store": STORE, "pool": self.pool.resource, "review": False, **args},
                                max_workers=self.workers, jobs=jobs)
        seconds = time.perf_counter() - t0
        cpu = {k: v - cpu0[k] for k, v in cpu_now(self.azurite, self.pool).items()}
        return FlowRun(seconds, result, list(jobs._jobs.values()), cpu, self.pool.stats(), machine_cpu_s() - machine0)

    async def document(self, matter_id: str, doc_id: str, **args: Any) -> FlowRun:
        return await self.run("f/matter/process_document", {"matter_id": matter_id, "doc_id": doc_id, **args})

    async def matter(self, matter_id: str, **args: Any) -> FlowRun:
        return await self.run("f/matter/process_matter", {"matter_id": matter_id, **args})

    async def usage(self, matter_id: str, doc_id: str) -> tuple[int, int, int]:
        """(calls, prompt tokens, completion tokens) of the current chunk plan's stored calls."""
        doc = DocPaths(matter_id, doc_id)
        async with self.store(matter_id) as store:
            plan = await store.read_model(doc.chunk_plan, ChunkPlan)
            current = {c.chunk_id for c in plan.chunks}
            names = [n for n in await store.list_names(f"{doc.prefix}extractions/") if n.split("/")[-2] in current]
            gate = asyncio.Semaphore(16)

            async def one(name: str) -> CallRecord:
                async with gate:
                    return await store.read_model(name, CallRecord)

            records = await asyncio.gather(*(one(n) for n in names))
        return (len(records), sum(r.usage.prompt_tokens for r in records),
                sum(r.usage.completion_tokens for r in records))

    async def calls_stored(self, matter_id: str) -> int:
        async with self.store(matter_id) as store:
            return sum("/extractions/" in n for n in await store.list_names(MatterPaths(matter_id).prefix))


@asynccontextmanager
async def services(plan: PoolPlan, workers: int) -> AsyncIterator[Bench]:
    LOGS.mkdir(parents=True, exist_ok=True)
    azurite = await asyncio.to_thread(start_azurite, None, LOGS)
    try:
        async with open_store({"container": CONTAINER, "connection_string": azurite.connection_string},
                              create_container=True):
            pass
        with SimPool(plan) as pool:
            yield Bench(azurite, pool, workers)
    finally:
        azurite.stop()
