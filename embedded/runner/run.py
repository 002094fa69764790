"""Run a flow or a script as a Windmill worker would: local API up, each step in its own process."""

from typing import Any

from embedded.runner.context import open_run
from embedded.runner.jobs import Jobs
from embedded.runner.errors import FlowFailed, InvalidRun, JobFailed
from embedded.runner.executor import StepFailed, run_flow_job, run_script_job
from embedded.runner.spec import load_flow
from embedded.runner.workspace import Workspace


async def run_flow(
    ws: Workspace, path: str, args: dict[str, Any], *, max_workers: int = 4, verbose: bool = False,
    jobs: Jobs | None = None, job_id: str | None = None,
) -> Any:
    """The flow's result. Raises InvalidRun before running anything, FlowFailed if a step fails.

    `jobs`/`job_id`: record the run in that registry, as that (queued) job (the API server's queue).
    """
    flow = load_flow(ws, path)
    args = flow.with_defaults(args)
    async with open_run(ws, max_workers, verbose, jobs) as run:
        run.flows[path] = flow
        try:
            return await run_flow_job(run, flow, args, job_id=job_id)
        except StepFailed as failed:
            raise FlowFailed(failed.step_id, failed.error, failed.result) from None


async def run_script(
    ws: Workspace, path: str, args: dict[str, Any], *, verbose: bool = False, jobs: Jobs | None = None,
    job_id: str | None = None,
) -> Any:
    """main()'s result. Raises InvalidRun for a missing script or argument, JobFailed if it fails."""
    missing = [name for name in ws.required_args(path) if name not in args]
    if missing:
        raise InvalidRun(f"script {path}: missing required argument(s): {', '.join(missing)}")
    async with open_run(ws, 1, verbose, jobs) as run:
        try:
            return await run_script_job(run, path, args, job_id)
        except StepFailed as failed:
            raise JobFailed(failed.error, failed.result) from None
