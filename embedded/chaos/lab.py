"""A lab for one chaos scenario: Azurite on disk, simulated LLM servers, and the local runner, all in a temp dir.

Everything a run leaves behind stays under `Lab.state`: Azurite's blobs and log, the runner's job folders
and logs (`runs/`), the resources the flows read (`local/resources/`), and everything the runner printed on
stderr (`runner-stderr.log`). The security scan reads exactly these.

Secrets reach the jobs as Windmill gives them: the store and the pool are resources whose connection
string and API key are `$var:` references to (secret) variables, resolved when a job starts.
"""

import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedded.azurite import Azurite, start_azurite
from embedded.runner import FlowFailed, Workspace, run_flow
from embedded.simpool import SimBackendSpec, SimServer
from f.core.layout import MatterPaths
from f.core.models import DocumentResult, FailureRecord
from f.core.storage import BlobStore, NotFound, open_store
from f.pipeline.sources import add_source

ROOT = Path(__file__).resolve().parents[2]
CONTAINER = "matters"
STORE_RESOURCE = "f/matter/chaos_store"
POOL_RESOURCE = "f/llm/chaos_pool"
BLOB_VARIABLE = "f/matter/chaos_blob_connection_string"
KEY_VARIABLE = "f/llm/chaos_api_key"
ACCOUNT = "chaosaccount"


def new_account_key() -> str:
    """A fresh storage account key (base64 of 64 random bytes, like Azure's)."""
    return base64.b64encode(secrets.token_bytes(64)).decode()


@dataclass
class LabWorkspace(Workspace):
    """The repository's scripts and flows, with run state (job folders, stored resources) kept elsewhere."""

    state: Path | None = None

    @property
    def state_dir(self) -> Path:  # type: ignore[override]
        assert self.state is not None
        return self.state


def sim_specs(n: int = 3, *, api_key: str, **overrides: Any) -> list[SimBackendSpec]:
    """n equal backends (one priority tier), fast and fault-free unless `overrides` say otherwise.
    A rate limit high enough never to throttle: the scenarios measure their own fault, not 429s."""
    base = {"style": "openai", "deployment": "sim-model", "latency_ms": 40, "priority": 1, "weight": 1,
            "max_inflight": 8, "timeout_s": 3.0}
    return [SimBackendSpec(**(base | {"name": f"b{i}", "api_key": api_key, "seed": 11 + i} | overrides))
            for i in range(n)]


def pool_value(specs: Iterable[SimBackendSpec], urls: dict[str, str], **pool: Any) -> dict[str, Any]:
    """The llm_pool resource for the lab's servers; the key is a `$var:` reference, as in production."""
    backends = []
    for s in specs:
        entry: dict[str, Any] = {"name": s.name, "kind": s.style, "base_url": urls[s.name], "model": s.deployment,
                                 "priority": s.priority, "weight": s.weight, "max_inflight": s.max_inflight,
                                 "timeout_s": s.timeout_s, "structured_output": s.structured_output,
                                 "logprobs": s.logprobs}
        if s.api_key:
            entry |= {"auth": "key", "api_key": f"$var:{KEY_VARIABLE}"}
        if s.style == "azure":
            entry["api_version"] = "2024-10-21"
        backends.append(entry)
    return {"backends": backends, "deadline_s": 20.0, "max_attempts": 4,
            "breaker": {"cooloff_s": 1.0, "max_cooloff_s": 2.0}, **pool}


@dataclass
class RunOutcome:
    ok: bool
    seconds: float
    result: Any = None
    error: str | None = None
    step: str | None = None
    ended: float = 0.0  # time.monotonic() at the end
    complete: bool = True  # every document has a result after it (set by the scenario)


@dataclass
class Paid:
    """What the simulated servers served: responses the client could use (`usable`), and the rest."""

    ok: int
    usable: int
    in_flight: int
    abandoned: int  # slow-drip replies: the client gave up on them

    def __sub__(self, other: "Paid") -> "Paid":
        return Paid(self.ok - other.ok, self.usable - other.usable, self.in_flight, self.abandoned - other.abandoned)


@dataclass
class Kill:
    stage: str
    pid: int
    alive_s: float
    at: float  # time.monotonic() of the kill


@dataclass
class Lab:
    state: Path
    matter: MatterPaths
    account_key: str
    api_key: str
    specs: list[SimBackendSpec]
    pool_overrides: dict[str, Any]
    azurite: Azurite | None = None
    azurite_port: int = 0
    servers: list[SimServer] = field(default_factory=list)
    ws: LabWorkspace | None = None
    docs: dict[str, str] = field(default_factory=dict)  # doc_id -> file name
    _stderr: Any = None

    # --- services ------------------------------------------------------------------------------

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={self.account_key};"
                f"BlobEndpoint=http://127.0.0.1:{self.azurite_port}/{ACCOUNT};")

    @property
    def store_config(self) -> dict[str, Any]:
        """The store as a job sees it after `$var:` interpolation (for the harness's own reads)."""
        return {"container": CONTAINER, "connection_string": self.connection_string,
                "attempts": 3, "retry_backoff_s": 0.5, "connect_timeout_s": 2.0, "read_timeout_s": 10.0}

    async def start_azurite(self) -> None:
        """Start (or restart, on the same port) Azurite with the lab's own account key."""
        before = os.environ.get("AZURITE_ACCOUNTS")
        os.environ["AZURITE_ACCOUNTS"] = f"{ACCOUNT}:{self.account_key}"
        try:
            self.azurite = await asyncio.to_thread(start_azurite, self.state / "azurite", self.state / "logs",
                                                   port=self.azurite_port)
        finally:
            if before is None:
                os.environ.pop("AZURITE_ACCOUNTS", None)
            else:
                os.environ["AZURITE_ACCOUNTS"] = before
        self.azurite_port = self.azurite.port

    async def stop_azurite(self) -> None:
        if self.azurite is not None:
            await asyncio.to_thread(self.azurite.stop)

    def server(self, name: str) -> SimServer:
        return next(s for s in self.servers if s.spec.name == name)

    def set_fault(self, *names: str, **spec: Any) -> None:
        """Change servers' behaviour from now on (down_windows are seconds since the server started)."""
        for s in self.servers:
            if not names or s.spec.name in names:
                s.spec = s.spec.model_copy(update=spec)

    def down_for(self, seconds: float, *names: str) -> None:
        """Answer 503 from now on for `seconds`."""
        for s in self.servers:
            if not names or s.spec.name in names:
                now = time.monotonic() - s.started
                s.spec = s.spec.model_copy(update={"down_windows": [(now, now + seconds)]})

    # --- the matter ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def store(self, scope: str | None = None) -> AsyncIterator[BlobStore]:
        async with open_store(self.store_config, self.matter.prefix if scope is None else scope) as s:
            yield s

    async def upload(self, files: dict[str, tuple[str, bytes]]) -> None:
        """{doc_id: (file name, bytes)} into the matter, as source blobs."""
        async with self.store() as s:
            for doc_id, (name, data) in files.items():
                await add_source(s, self.matter.doc(doc_id), data, name)
                self.docs[doc_id] = name

    def flow_args(self, **args: Any) -> dict[str, Any]:
        return {"matter_id": self.matter.matter_id, "store": f"$res:{STORE_RESOURCE}",
                "pool": f"$res:{POOL_RESOURCE}", "k": 3, "chunk_pages": 2, "overlap_chars": 400,
                "batch_size": 4, "review": False, **args}

    async def run(self, flow: str = "process_matter", *, workers: int = 4, **args: Any) -> RunOutcome:
        """Run a flow through the local runner; FlowFailed becomes a failed outcome, never an exception."""
        assert self.ws is not None
        t0 = time.monotonic()
        try:
            result = await run_flow(self.ws, f"f/matter/{flow}", self.flow_args(**args), max_workers=workers)
        except FlowFailed as e:
            message = str(e.error.get("message") or "")
            return RunOutcome(False, time.monotonic() - t0, e.result, message, e.step_id, time.monotonic())
        return RunOutcome(True, time.monotonic() - t0, result, ended=time.monotonic())

    async def results(self) -> dict[str, DocumentResult | None]:
        out: dict[str, DocumentResult | None] = {}
        async with self.store() as s:
            for doc_id in self.docs:
                try:
                    out[doc_id] = await s.read_model(self.matter.doc(doc_id).result, DocumentResult)
                except NotFound:
                    out[doc_id] = None
        return out

    async def failures(self) -> dict[str, FailureRecord]:
        out: dict[str, FailureRecord] = {}
        async with self.store() as s:
            for doc_id in self.docs:
                with contextlib.suppress(NotFound):
                    out[doc_id] = await s.read_model(self.matter.doc(doc_id).failure, FailureRecord)
        return out

    async def records(self) -> set[str]:
        """Names of the extraction call records: one per finished (paid) LLM call."""
        async with self.store() as s:
            return {n for n in await s.list_names(self.matter.prefix) if "/extractions/" in n}

    async def all_names(self) -> list[str]:
        async with self.store("") as s:
            return await s.list_names("")

    def paid(self) -> Paid:
        """Replies the servers finished: `ok` counts every 200 with a body; `usable` leaves out the ones no
        client can use (truncated JSON from a 'truncated' backend, schema-invalid ones)."""
        ok = usable = in_flight = abandoned = 0
        for s in self.servers:
            st = s.stats
            ok += st["ok"]
            unusable = st["invalid"] + (st["bad_json"] if s.spec.bad_json_style == "truncated" else 0)
            usable += st["ok"] - unusable
            in_flight += st["concurrent"]
            abandoned += st["slow_drips"]
        return Paid(ok, usable, in_flight, abandoned)

    # --- faults on the runner's processes --------------------------------------------------------

    async def kill_stage(self, stage: str, *, after_s: float = 0.0,
                         when: Callable[[], Any] | None = None, timeout_s: float = 120.0) -> Kill | None:
        """SIGKILL the process group of the first job process running f/matter/<stage>.py, once it has lived
        `after_s` and `when()` (sync or async) is true. None if no such process showed up in time."""
        script = str(ROOT / "f" / "matter" / f"{stage}.py")
        seen: dict[int, float] = {}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for pid in job_processes(script):
                seen.setdefault(pid, time.monotonic())
            for pid, born in list(seen.items()):
                alive = time.monotonic() - born
                if not _alive(pid):
                    seen.pop(pid)
                    continue
                ready = alive >= after_s
                if ready and when is not None:
                    flag = when()
                    ready = bool(await flag) if asyncio.iscoroutine(flag) else bool(flag)
                if ready:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
                    return Kill(stage, pid, round(alive, 2), time.monotonic())
            await asyncio.sleep(0.02)
        return None


def job_processes(script: str) -> list[int]:
    """Job processes of this process (the runner's children) running `script`."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if ppid != me:
                continue
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if script.encode() in cmdline:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


@contextlib.asynccontextmanager
async def open_lab(
    matter_id: str = "M-CHAOS-1",
    *,
    specs: Callable[[str], list[SimBackendSpec]] | None = None,
    pool: dict[str, Any] | None = None,
    state: Path | None = None,
    api_key: str | None = None,
    account_key: str | None = None,
    keep: bool = False,
) -> AsyncIterator[Lab]:
    """A running lab. `specs(api_key)` makes the simulated backends (default: three equal ones)."""
    api_key = api_key or "sk-chaos-" + secrets.token_hex(16)
    own_dir = state is None
    state = Path(tempfile.mkdtemp(prefix="chaos-")) if state is None else state
    state.mkdir(parents=True, exist_ok=True)
    made = (specs or (lambda key: sim_specs(api_key=key)))(api_key)
    lab = Lab(state, MatterPaths(matter_id), account_key or new_account_key(), api_key, made, pool or {})
    async with contextlib.AsyncExitStack() as stack:
        stderr = stack.enter_context(open(state / "runner-stderr.log", "a"))
        stack.enter_context(contextlib.redirect_stderr(stderr))
        await lab.start_azurite()
        stack.push_async_callback(lab.stop_azurite)
        async with open_store(lab.store_config, create_container=True):
            pass
        for spec in made:
            server = SimServer(spec)
            await server.start()
            lab.servers.append(server)
            stack.push_async_callback(server.stop)
        urls = {s.spec.name: s.base_url for s in lab.servers}
        lab.ws = LabWorkspace(ROOT, env="local", state=state,
                              variables={BLOB_VARIABLE: lab.connection_string, KEY_VARIABLE: api_key})
        lab.ws.set_resource(STORE_RESOURCE, {"container": CONTAINER, "connection_string": f"$var:{BLOB_VARIABLE}",
                                             "attempts": 3, "retry_backoff_s": 0.5, "connect_timeout_s": 2.0,
                                             "read_timeout_s": 10.0}, "matter_store")
        lab.ws.set_resource(POOL_RESOURCE, pool_value(made, urls, **lab.pool_overrides), "llm_pool")
        try:
            yield lab
        finally:
            await stack.aclose()
            if own_dir and not keep:
                await asyncio.to_thread(_rmtree, state)


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def field_values(result: DocumentResult | None) -> dict[str, Any] | None:
    """What two runs must agree on: every field's value and page, the type, and the review verdict."""
    if result is None:
        return None
    return {"document_type": result.document_type, "needs_review": result.needs_review,
            "fields": {name: (f.value, f.page) for name, f in sorted(result.fields.items())}}


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def log(message: str) -> None:
    """A line on the real stderr (the lab redirects sys.stderr into its log)."""
    print(message, file=sys.__stderr__, flush=True)


STAGES = ("ingest", "split", "extract", "merge", "score")


async def watch_lifetimes(stop: asyncio.Event, stages: Iterable[str] = STAGES) -> dict[str, list[float]]:
    """Seconds each job process of the given stages lived, polled until `stop` is set."""
    scripts = {str(ROOT / "f" / "matter" / f"{s}.py"): s for s in stages}
    born: dict[int, tuple[str, float]] = {}
    lived: dict[str, list[float]] = {s: [] for s in scripts.values()}
    while not stop.is_set():
        now = time.monotonic()
        for script, stage in scripts.items():
            for pid in job_processes(script):
                born.setdefault(pid, (stage, now))
        for pid, (stage, t) in list(born.items()):
            if not _alive(pid):
                lived[stage].append(round(now - t, 2))
                born.pop(pid)
        await asyncio.sleep(0.02)
    return lived


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for t in Path(f"/proc/{pid}/task").iterdir()
                for c in (t / "children").read_text().split()]
    except OSError:
        return []


def _peak_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


async def watch_memory(stop: asyncio.Event, stages: Iterable[str] = STAGES) -> dict[str, int]:
    """Peak resident memory (MiB) of each stage's job processes, their worker processes included (each
    process counted on its own: the largest one is what must stay bounded)."""
    scripts = {str(ROOT / "f" / "matter" / f"{s}.py"): s for s in stages}
    peak: dict[str, int] = {s: 0 for s in scripts.values()}
    while not stop.is_set():
        for script, stage in scripts.items():
            for pid in job_processes(script):
                for p in [pid, *_children(pid)]:
                    peak[stage] = max(peak[stage], _peak_kib(p))
        await asyncio.sleep(0.05)
    return {s: round(kib / 1024) for s, kib in peak.items()}
