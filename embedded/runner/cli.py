"""`scripts/wm`: run a flow or a script locally, like `wmill flow run` / `wmill script run`; answer approval steps.

    scripts/wm flow run f/matter/extract_all -d '{"doc_id": "d1"}'
    scripts/wm script run f/matter/list_chunks -d @args.json --no-services -v
    scripts/wm job approvals                      # flows waiting at an approval step (from another terminal)
    scripts/wm job approve <job id> -d '{"corrections": {"client_name": "Acme Robotics, Inc."}}'
    scripts/wm job reject <job id> -d '{"reason": "wrong document"}'

A job id is the flow's (root or sub-flow) or the approval step's; approve POSTs the payload to the step's
resume URL, reject to its cancel URL, as a person following the links from `wmill.get_resume_urls()` would.

The result is printed as JSON on stdout; progress and errors go to stderr. Exit code 0 on
success, 1 when the job fails, 2 when nothing could be run.
"""

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from embedded.runner import FlowFailed, InvalidRun, JobFailed, Workspace, run_flow, run_script
from embedded.runner.process import REPO_ROOT


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("path", help="workspace path, e.g. f/matter/extract_all")
    common.add_argument("-d", "--data", default="{}", help="arguments: a JSON object, or @file.json")
    common.add_argument("--env", default="local", help="read resources and variables from resources/<env>/")
    common.add_argument("--workers", type=int, default=4, help="job processes at once, like worker replicas")
    common.add_argument("--pool", choices=["sim", "local-models"], default="sim", help="LLM backend for the services")
    common.add_argument("--no-services", action="store_true", help="do not start the embedded services")
    common.add_argument("--root", type=Path, default=REPO_ROOT, help="workspace root (default: this repo)")
    common.add_argument("-v", "--verbose", action="store_true", help="echo each job's output on stderr")
    parser = argparse.ArgumentParser(prog="wm", description="Run Windmill flows and scripts locally.")
    kinds = parser.add_subparsers(dest="kind", required=True)
    for kind in ("flow", "script"):
        verbs = kinds.add_parser(kind, help=f"{kind} commands").add_subparsers(dest="verb", required=True)
        verbs.add_parser("run", parents=[common], help=f"run a {kind} and print its result")
    jobs = kinds.add_parser("job", help="approval steps of running flows").add_subparsers(dest="verb", required=True)
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--root", type=Path, default=REPO_ROOT, help="workspace root (default: this repo)")
    jobs.add_parser("approvals", parents=[where], help="list the flows waiting at an approval step")
    for verb, what in (("approve", "resume payload, e.g. corrected values"), ("reject", "cancel payload, e.g. a reason")):
        p = jobs.add_parser(verb, parents=[where], help=f"{verb} a flow waiting at an approval step")
        p.add_argument("job_id", help="the flow's job id (root or sub-flow) or the approval step's")
        p.add_argument("-d", "--data", default="{}", help=f"{what}: a JSON object, or @file.json")
        p.add_argument("--approver", default="local", help="who approves (recorded with the review)")
    return parser


def _pending(root: Path) -> list[dict[str, Any]]:
    folder = Workspace(root).state_dir / "approvals"
    out = []
    for file in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            out.append(json.loads(file.read_text()))
        except (OSError, json.JSONDecodeError):
            continue  # being written or removed right now
    return out


def _job_command(a: argparse.Namespace) -> Any:
    import httpx

    pending = _pending(a.root)
    if a.verb == "approvals":
        return [{k: p.get(k) for k in ("root_job", "flow_job", "job", "flow", "step", "request")} for p in pending]
    found = [p for p in pending if a.job_id in (p.get("job"), p.get("flow_job"), p.get("root_job"))]
    if not found:
        raise InvalidRun(f"no flow waiting at an approval step has job id {a.job_id} (scripts/wm job approvals)")
    if len(found) > 1:
        raise InvalidRun(f"{len(found)} approval steps wait under {a.job_id}: give one of their job ids: "
                         + ", ".join(p["job"] for p in found))
    step = found[0]
    payload = _data(a.data)
    if a.approver:
        payload.setdefault("approver", a.approver)
    response = httpx.post(step["resume" if a.verb == "approve" else "cancel"], json=payload, timeout=30)
    if response.status_code >= 400:
        raise InvalidRun(f"{a.verb} {step['job']}: HTTP {response.status_code}: {response.text}")
    return {"job": step["job"], "flow_job": step["flow_job"], "step": step["step"], "answer": response.text}


def _data(text: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(text[1:]).read_text() if text.startswith("@") else text)
    except (OSError, json.JSONDecodeError) as e:
        raise InvalidRun(f"-d: {e}") from None
    if not isinstance(data, dict):
        raise InvalidRun("-d: the arguments must be a JSON object")
    return data


@asynccontextmanager
async def _services(a: argparse.Namespace) -> AsyncIterator[dict[str, str]]:
    if a.no_services:
        yield {}
        return
    try:
        from embedded.services import local_services
    except ModuleNotFoundError as e:
        if e.name != "embedded.services":
            raise
        raise InvalidRun("embedded/services.py is missing: pass --no-services") from None
    async with local_services(pool=a.pool) as variables:
        yield variables


async def _run(a: argparse.Namespace) -> Any:
    args = _data(a.data)
    async with _services(a) as variables:
        ws = Workspace(a.root, env=a.env, variables=variables)
        if a.kind == "flow":
            return await run_flow(ws, a.path, args, max_workers=a.workers, verbose=a.verbose)
        return await run_script(ws, a.path, args, verbose=a.verbose)


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    if a.kind == "job":
        try:
            print(json.dumps(_job_command(a), indent=2))
        except InvalidRun as e:
            print(f"wm: {e}", file=sys.stderr)
            return 2
        return 0
    try:
        result = asyncio.run(_run(a))
    except InvalidRun as e:
        print(f"wm: {e}", file=sys.stderr)
        return 2
    except JobFailed as e:
        where = f" at step {e.step_id!r}" if isinstance(e, FlowFailed) else ""
        print(f"wm: {a.kind} {a.path} failed{where}: {e.error.get('name')}: {e.error.get('message')}", file=sys.stderr)
        if e.error.get("stack"):
            print(e.error["stack"].rstrip(), file=sys.stderr)
        if e.result != {"error": e.error}:
            print(f"wm: the failure module returned {json.dumps(e.result)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
