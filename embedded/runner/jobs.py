"""The jobs of a run, as the local API reports them (jobs_u/get, job_metrics)."""

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal


@dataclass
class Job:
    id: str
    kind: Literal["flow", "script"]
    path: str  # script or flow path; f"{flow}/{step}" for an inline step
    label: str  # how progress lines name it, e.g. "extract_each[3].extract"
    args: dict[str, Any]
    parent: "Job | None" = None
    step_id: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    success: bool | None = None  # None while running
    result: Any = None
    progress: int | None = None

    @property
    def root(self) -> "Job":
        return self.parent.root if self.parent else self

    def finish(self, success: bool, result: Any) -> None:
        self.success, self.result = success, result

    def as_json(self) -> dict[str, Any]:
        """The fields of Windmill's Job object that clients read."""
        done = self.success is not None
        return {
            "id": self.id,
            "type": "CompletedJob" if done else "QueuedJob",
            "job_kind": self.kind,
            "script_path": self.path,
            "parent_job": self.parent.id if self.parent else None,
            "root_job": self.root.id if self.parent else None,
            "flow_step_id": self.step_id,
            "args": self.args,
            "created_at": self.created_at.isoformat(),
            "running": not done,
            "success": self.success,
            "result": self.result if done else None,
            "progress": self.progress,
        }


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def add(
        self,
        kind: Literal["flow", "script"],
        path: str,
        label: str,
        args: dict[str, Any],
        parent: Job | None = None,
        step_id: str | None = None,
    ) -> Job:
        job = Job(str(uuid.uuid4()), kind, path, label, args, parent, step_id)
        self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)
