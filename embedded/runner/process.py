"""One job in a fresh Python process: arguments in by file, result out by file, output to a log."""

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]  # holds the `embedded` package
LOG_TAIL_LINES = 20


async def execute(
    file: Path,
    module: str,
    args: dict[str, Any],
    job_dir: Path,
    env: dict[str, str],
    on_line: Callable[[str], None],
) -> dict[str, Any]:
    """Run main() of `file` in a new process; {"result": ...} or {"error": {...}}.

    Output goes to <job_dir>.log. Cancelling the call (timeout, sibling failure) kills the
    process group.
    """
    job_dir.mkdir(parents=True)
    # The arguments hold resolved resources (connection strings, API keys): readable by this user only, and
    # gone once the job has read them (job.py) or ended, as Windmill removes a job's folder.
    args_file = job_dir / "args.json"
    with os.fdopen(os.open(args_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(json.dumps(args))
    log = job_dir.with_suffix(".log")
    with log.open("w") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "embedded.runner.job", str(file), module, str(job_dir),
            cwd=job_dir, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True, limit=1 << 24,
        )
        try:
            assert proc.stdout
            async for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                out.write(line + "\n")
                out.flush()
                on_line(line)
            code = await proc.wait()
        finally:
            if proc.returncode is None:
                os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
            args_file.unlink(missing_ok=True)
    result = job_dir / "result.json"
    if result.is_file():
        return json.loads(result.read_text())
    tail = "\n".join(log.read_text().splitlines()[-LOG_TAIL_LINES:])
    return {"error": {"name": "ExecutionErr", "message": f"job process exited with code {code} and no result; log {log}:\n{tail}"}}
