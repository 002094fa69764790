"""Start one job process in the environment a Windmill worker gives it, holding a worker slot."""

import asyncio
import os
import time
from functools import partial
from pathlib import Path
from typing import Any

from embedded.runner import process
from embedded.runner.context import Run
from embedded.runner.errors import InvalidRun
from embedded.runner.jobs import Job
from embedded.runner.workspace import NotFound


async def launch(run: Run, job: Job, file: Path, module: str, timeout: float | None = None) -> dict[str, Any]:
    """{"result": ...} or {"error": {...}} of main() in `file`, reported and recorded on `job`.

    `job.args` may hold "$res:..." / "$var:..." strings: they are resolved here, as Windmill resolves
    job arguments. `timeout` counts from the process start and kills it (raising TimeoutError).
    """
    try:
        args = run.ws.interpolate(job.args)
    except (NotFound, InvalidRun) as e:
        return _finish(run, job, {"error": {"name": "NotFound", "message": f"argument {e}"}}, 0.0)
    async with run.workers:
        run.report.started(job)
        t0 = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                out = await process.execute(file, module, args, job_dir(run, job), _env(run, job), partial(run.report.log, job))
        except (asyncio.CancelledError, TimeoutError):
            job.finish(False, {"error": {"name": "Canceled", "message": "job process killed"}})
            run.report.note("killed", job.label)
            raise
    return _finish(run, job, out, time.monotonic() - t0)


def job_dir(run: Run, job: Job) -> Path:
    """.state/runs/<root job>/<job>/: args.json and result.json; the log is <job>.log beside it."""
    return run.ws.state_dir / "runs" / job.root.id / job.id


def _finish(run: Run, job: Job, out: dict[str, Any], seconds: float) -> dict[str, Any]:
    if "error" in out:
        job.finish(False, out)
        run.report.failed(job.label, seconds, out["error"])
    else:
        job.finish(True, out["result"])
        run.report.succeeded(job, seconds, out["result"])
    return out


def _env(run: Run, job: Job) -> dict[str, str]:
    """What the `wmill` client and scripts read in a Windmill job."""
    env = {k: v for k, v in os.environ.items() if k != "WM_MOCKED_API_FILE"}
    env.update(
        BASE_INTERNAL_URL=run.api.url,
        WM_BASE_URL=run.api.url,
        WM_TOKEN=run.api.token,
        WM_WORKSPACE=run.ws.id,
        WM_JOB_ID=job.id,
        WM_JOB_PATH=job.path,
        WM_EMAIL="local@localhost",
        WM_USERNAME="local",
        PYTHONPATH=os.pathsep.join(dict.fromkeys([str(run.ws.root), str(process.REPO_ROOT)])),
        PYTHONUNBUFFERED="1",
    )
    if job.parent:
        state = f"{job.parent.path}/{job.step_id}"
        env.update(
            WM_FLOW_JOB_ID=job.parent.id,
            WM_ROOT_FLOW_JOB_ID=job.root.id,
            WM_FLOW_STEP_ID=job.step_id or "",
            WM_FLOW_PATH=job.parent.path,
        )
    else:
        state = f"{job.path}/state"
    env.update(WM_STATE_PATH_NEW=state, WM_STATE_PATH=state)
    return env
