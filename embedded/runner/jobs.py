"""The jobs the local API reports (jobs_u/get, get_result_maybe, job_metrics) and the queue that runs
the jobs started through it.

A run's jobs live in a `Jobs` registry: the flow job, then one job per step process, each pointing at
its parent. `JobQueue` starts flows and scripts the way Windmill's queue does: a job is created at once
(queued), and runs when one of `limit` slots is free, through `run_flow`/`run_script` in this event
loop, with the queue's registry shared so that the API sees every step job and its progress.
"""

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from embedded.runner.spec import BranchAll, BranchOne, Flow, ForLoop, Module, WhileLoop, walk
from embedded.runner.workspace import Workspace

log = logging.getLogger("embedded.runner.jobs")
Kind = Literal["flow", "script"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(eq=False)
class Job:
    id: str
    kind: Kind
    path: str  # script or flow path; f"{flow}/{step}" for an inline step
    label: str  # how progress lines name it, e.g. "extract_each[3].extract"
    args: dict[str, Any]
    parent: "Job | None" = None
    step_id: str | None = None
    created_by: str = "local"
    created_at: datetime = field(default_factory=_now)
    started_at: datetime | None = field(default_factory=_now)  # None while queued
    finished_at: datetime | None = None
    success: bool | None = None  # None while queued or running
    result: Any = None
    progress: int | None = None
    canceled: str | None = None  # the reason, once canceled
    loops: dict[str, int] = field(default_factory=dict)  # for-loop module id -> its number of iterations
    suspended: int = 0  # a flow waiting at an approval step: the resume events it still needs

    @property
    def root(self) -> "Job":
        return self.parent.root if self.parent else self

    @property
    def done(self) -> bool:
        return self.success is not None

    def finish(self, success: bool, result: Any) -> None:
        self.success, self.result, self.finished_at = success, result, _now()

    def as_json(self) -> dict[str, Any]:
        """The fields of Windmill's Job object (QueuedJob or CompletedJob) that clients read."""
        out: dict[str, Any] = {
            "id": self.id,
            "type": "CompletedJob" if self.done else "QueuedJob",
            "job_kind": self.kind,
            "script_path": self.path,
            "parent_job": self.parent.id if self.parent else None,
            "root_job": self.root.id if self.parent else None,
            "flow_step_id": self.step_id,
            "args": self.args,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "running": self.started_at is not None and not self.done,
            "success": self.success,
            "result": self.result if self.done else None,
            "progress": self.progress,
            "canceled": self.canceled is not None,
            "canceled_reason": self.canceled,
        }
        if self.kind == "flow":
            out["suspend"] = self.suspended
        if self.done and self.started_at and self.finished_at:
            out["duration_ms"] = int((self.finished_at - self.started_at).total_seconds() * 1000)
        return out


@dataclass(frozen=True)
class ResumeEvent:
    """One approval (or cancel) of a suspended step, as Windmill's resume_job row."""

    resume_id: int
    approver: str | None
    approved: bool
    payload: Any = None


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self.resume_key = secrets.token_bytes(32)  # signs resume URLs (Windmill: the workspace key)
        self._resumes: dict[str, list[ResumeEvent]] = {}
        self._resumed: dict[str, asyncio.Event] = {}

    # --- approval steps: resume events per step job, kept until the flow consumes them -----------

    def resume_signature(self, job_id: str, resume_id: int, approver: str | None) -> str:
        message = job_id.encode() + resume_id.to_bytes(4, "big") + (approver or "").encode()
        return hmac.new(self.resume_key, message, hashlib.sha256).hexdigest()

    def check_signature(self, job_id: str, resume_id: int, approver: str | None, signature: str) -> bool:
        return hmac.compare_digest(self.resume_signature(job_id, resume_id, approver), signature)

    def resume(self, job_id: str, event: ResumeEvent) -> None:
        """Record an approval or a cancel of the step job `job_id` (it may come before the flow waits)."""
        events = self._resumes.setdefault(job_id, [])
        if any(e.resume_id == event.resume_id for e in events):
            raise ValueError(f"resume id {event.resume_id} of job {job_id} was already used")
        events.append(event)
        self._resumed.setdefault(job_id, asyncio.Event()).set()

    async def wait_resumes(self, job_id: str, required: int, timeout: float) -> list[ResumeEvent] | None:
        """The events once `required` approvals (or any cancel) arrived; None after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            events = self._resumes.get(job_id, [])
            if any(not e.approved for e in events) or len(events) >= required:
                return list(events)
            flag = self._resumed.setdefault(job_id, asyncio.Event())
            flag.clear()
            try:
                await asyncio.wait_for(flag.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                return None

    def add(
        self,
        kind: Kind,
        path: str,
        label: str,
        args: dict[str, Any],
        parent: Job | None = None,
        step_id: str | None = None,
        job_id: str | None = None,
    ) -> Job:
        """A started job; with the id of a queued one, that job, now started."""
        if job_id in self._jobs:
            job = self._jobs[job_id]
            job.started_at = _now()
            return job
        job = Job(job_id or str(uuid.uuid4()), kind, path, label, args, parent, step_id)
        self._jobs[job.id] = job
        return job

    def queue(self, kind: Kind, path: str, args: dict[str, Any], created_by: str) -> Job:
        job = Job(str(uuid.uuid4()), kind, path, path, args, created_by=created_by, started_at=None)
        self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def children(self, job: Job) -> list[Job]:
        return [j for j in self._jobs.values() if j.parent is job]


def flow_status(jobs: Jobs, job: Job, flow: Flow) -> dict[str, Any]:
    """Windmill's FlowStatus of a flow job, from its step jobs: one entry per top-level module."""
    children = jobs.children(job)
    error = job.result.get("error") if job.success is False and isinstance(job.result, dict) else None
    failed_step = error.get("step_id") if isinstance(error, dict) else None
    modules = [_module_status(m, children, failed_step, job.loops) for m in flow.modules]
    for i, status in enumerate(modules):  # a module with no job that later ones passed was skipped
        if status["type"] == "WaitingForPriorSteps" and (job.success or any("job" in s or "flow_jobs" in s for s in modules[i + 1:])):
            status.update(type="Success", skipped=True)
    running = [i for i, s in enumerate(modules) if s["type"] == "InProgress"]
    started = [i for i, s in enumerate(modules) if s["type"] != "WaitingForPriorSteps"]
    step = running[0] if running else (started[-1] if started else 0)
    failure: dict[str, Any] = {"id": "failure", "type": "WaitingForPriorSteps"}
    if flow.failure_module:
        failure = _module_status(flow.failure_module, children, None, job.loops)
    return {"step": step, "modules": modules, "failure_module": failure}


def _module_status(module: Module, children: list[Job], failed_step: str | None, loops: dict[str, int]) -> dict[str, Any]:
    ids = {m.id for m in walk([module])}
    mine = [j for j in children if j.step_id in ids]
    out: dict[str, Any] = {"id": module.id}
    if not mine:
        out["type"] = "Failure" if failed_step in ids else "WaitingForPriorSteps"
        return out
    if any(not j.done for j in mine):
        out["type"] = "InProgress"
    else:
        out["type"] = "Failure" if failed_step in ids else "Success"
    if isinstance(module.value, (ForLoop, WhileLoop, BranchAll, BranchOne)):
        iterations = _iterations(module.id, mine)
        last = [its[-1] for _, its in sorted(iterations.items())]
        out["flow_jobs"] = [j.id for j in last]
        out["flow_jobs_success"] = [j.success for j in last]
        out["iterator"] = {"index": sum(j.done for j in last), "itered_len": loops.get(module.id)}
    else:
        out["job"] = mine[-1].id
        if out["type"] == "InProgress" and mine[-1].progress is not None:
            out["progress"] = mine[-1].progress
    return out


def _iterations(module_id: str, jobs: list[Job]) -> dict[int, list[Job]]:
    """Jobs by loop iteration (or branch), read from their labels: "<module>[<i>].<step>"."""
    pattern = re.compile(rf"(?:^|\.){re.escape(module_id)}\[(\w+)\]\.")
    out: dict[int, list[Job]] = {}
    for j in jobs:
        m = pattern.search(j.label)
        key = int(m.group(1)) if m and m.group(1).isdigit() else -1
        out.setdefault(key, []).append(j)
    return out


class JobQueue:
    """Jobs started through the API, at most `limit` running at once; each runs as run_flow/run_script."""

    def __init__(self, ws: Workspace, jobs: Jobs, limit: int = 2, workers: int = 4, verbose: bool = False) -> None:
        self.ws, self.jobs, self.workers, self.verbose = ws, jobs, workers, verbose
        self._slots = asyncio.Semaphore(max(1, limit))
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def submit(self, kind: Kind, path: str, args: dict[str, Any], created_by: str) -> Job:
        job = self.jobs.queue(kind, path, args, created_by)
        self._tasks[job.id] = asyncio.create_task(self._run(job), name=f"job {job.id}")
        return job

    async def wait(self, job: Job, timeout: float) -> bool:
        """True once the job is done; False if `timeout` seconds passed first."""
        task = self._tasks.get(job.id)
        if task is not None:
            await asyncio.wait({task}, timeout=timeout)
        return job.done

    def cancel(self, job: Job, reason: str) -> bool:
        """Cancel a queued or running job (killing its step processes); False if it is not running here."""
        task = self._tasks.get(job.id)
        if task is None or task.done() or job.done:
            return False
        job.canceled = reason
        task.cancel()
        return True

    async def aclose(self) -> None:
        for job_id in self._tasks:
            job = self.jobs.get(job_id)
            if job is not None:
                self.cancel(job, "server stopped")
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _run(self, job: Job) -> None:
        from embedded.runner.errors import InvalidRun, JobFailed
        from embedded.runner.run import run_flow, run_script

        try:
            async with self._slots:
                if job.kind == "flow":
                    await run_flow(self.ws, job.path, job.args, max_workers=self.workers, verbose=self.verbose,
                                   jobs=self.jobs, job_id=job.id)
                else:
                    await run_script(self.ws, job.path, job.args, verbose=self.verbose, jobs=self.jobs, job_id=job.id)
        except asyncio.CancelledError:
            job.finish(False, {"error": {"name": "Canceled", "message": f"Job canceled: {job.canceled}"}})
        except JobFailed as e:
            if not job.done:
                job.finish(False, e.result)
        except InvalidRun as e:
            job.finish(False, {"error": {"name": "InvalidRun", "message": str(e)}})
        except Exception as e:  # a bug in the runner: report it as the job's failure, keep serving
            log.exception("job %s crashed", job.id)
            job.finish(False, {"error": {"name": type(e).__name__, "message": str(e)}})
