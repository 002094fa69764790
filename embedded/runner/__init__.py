"""Local Windmill runner: executes OpenFlow YAML and workspace scripts the way Windmill does.

    from embedded.runner import Workspace, run_flow, run_script, FlowFailed
    result = await run_flow(Workspace(root), "f/matter/extract_all", {"doc_id": "d1"})

Names are imported lazily: every job process starts with `python -m embedded.runner.job`,
which imports this package and should not pay for aiohttp, pydantic and V8.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Workspace": "embedded.runner.workspace",
    "NotFound": "embedded.runner.workspace",
    "run_flow": "embedded.runner.run",
    "run_script": "embedded.runner.run",
    "InvalidRun": "embedded.runner.errors",
    "JobFailed": "embedded.runner.errors",
    "FlowFailed": "embedded.runner.errors",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
