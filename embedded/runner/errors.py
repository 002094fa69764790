"""Errors the runner raises to its callers."""

from typing import Any


class InvalidRun(ValueError):
    """The flow, script or arguments are invalid; nothing was run."""


class JobFailed(Exception):
    """A script job or flow ran and failed; `result` is what Windmill would store as its result."""

    def __init__(self, error: dict[str, Any], result: Any) -> None:
        super().__init__(f"{error.get('name', 'Error')}: {error.get('message', '')}")
        self.error = error
        self.result = result


class FlowFailed(JobFailed):
    """A flow failed at step `step_id` (after its failure module, if any, ran)."""

    def __init__(self, step_id: str, error: dict[str, Any], result: Any) -> None:
        super().__init__(error, result)
        self.step_id = step_id

    def __str__(self) -> str:
        return f"step {self.step_id!r} failed: {super().__str__()}"
