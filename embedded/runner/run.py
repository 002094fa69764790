"""Run a flow or a script as a Windmill worker would: local API up, each step in its own process."""

from typing import Any

from embedded.runner.context import open_run
from embedded.runner.errors import FlowFailed, InvalidRun, JobFailed
from embedded.runner.executor import StepFailed, run_flow_job, run_script_job
from embedded.runner.spec import load_flow
from embedded.runner.workspace import Workspace


async def run_flow(
    ws: Workspace, path: str, args: dict[str, Any], *, max_workers: int = 4, verbose: bool = False
) -> Any:
    """The flow's result. Raises InvalidRun before running anything, FlowFailed if a step fails."""
    flow = load_flow(ws, path)
    args = flow.with_defaults(args)
    async with open_run(ws, max_workers, verbose) as run:
        run.flows[path] = flow
        try:
            return await run_flow_job(run, flow, args)
        except StepFailed as failed:
            raise FlowFailed(failed.step_id, failed.error, failed.result) from None


async def run_script(ws: Workspace, path: str, args: dict[str, Any], *, verbose: bool = False) -> Any:
    """main()'s result. Raises InvalidRun for a missing script or argument, JobFailed if it fails."""
    missing = [name for name in ws.required_args(path) if name not in args]
    if missing:
        raise InvalidRun(f"script {path}: missing required argument(s): {', '.join(missing)}")
    async with open_run(ws, 1, verbose) as run:
        try:
            return await run_script_job(run, path, args)
        except StepFailed as failed:
            raise JobFailed(failed.error, failed.result) from None
