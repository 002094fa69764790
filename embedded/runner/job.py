"""Entry point of one job process, like Windmill's Python wrapper.

    python -m embedded.runner.job <script.py> <module name> <job dir>

Reads <job dir>/args.json, imports the script, calls main() with the arguments it declares
(None for missing ones, the default when an argument with a default is None or missing), and
writes <job dir>/result.json: {"result": ...} or {"error": {"name", "message", "stack"}}.
"""

import asyncio
import atexit
import base64
import importlib.util
import inspect
import json
import logging
import os
import sys
import traceback
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn


def _load(file: str, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec and spec.loader, f"cannot import {file}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _convert(value: Any, annotation: Any) -> Any:
    if isinstance(value, str) and annotation in (datetime, date):
        return annotation.fromisoformat(value)
    if isinstance(value, str) and annotation is bytes:
        return base64.b64decode(value)
    return value


def _call_args(main: Any, given: dict[str, Any]) -> dict[str, Any]:
    try:
        params = inspect.signature(main, eval_str=True).parameters
    except NameError:
        params = inspect.signature(main).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return given
    args = {}
    for name, p in params.items():
        value = given.get(name)
        if value is None and p.default is not p.empty:
            continue
        args[name] = _convert(value, p.annotation)
    return args


def _encode(result: Any) -> Any:
    if isinstance(result, bytes):
        return base64.b64encode(result).decode("ascii")
    if isinstance(result, dict):
        return {k: base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else v for k, v in result.items()}
    return result


def _error(e: BaseException) -> dict[str, Any]:
    return {"name": type(e).__name__, "message": str(e), "stack": "".join(traceback.format_exception(e))}


def run(file: str, name: str, job_dir: Path) -> int:
    args_file = job_dir / "args.json"
    given = json.loads(args_file.read_text())
    args_file.unlink()  # resolved secrets: keep them in memory only
    try:
        main = _load(file, name).main
        result = main(**_call_args(main, given))
        if inspect.isawaitable(result):
            result = asyncio.run(result)
        out: dict[str, Any] = {"result": _encode(result)}
    except Exception as e:
        out = {"error": _error(e)}
    try:
        text = json.dumps(out, allow_nan=False)
    except (TypeError, ValueError) as e:
        out = {"error": {"name": "ResultNotSerializable", "message": f"main() returned a value JSON cannot hold: {e}"}}
        text = json.dumps(out)
    (job_dir / "result.json").write_text(text)
    return 1 if "error" in out else 0


def _exit_now(code: int) -> NoReturn:
    """Exit once result.json is written: the atexit hooks (the last progress value) run and the streams are
    flushed, but not the interpreter's teardown of every module (about 0.1 s per job, for nothing)."""
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit_now(run(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
