"""`scripts/serve`: a local Windmill API for callers, on this repository's flows and scripts.

    scripts/serve                       # Azurite + simulated LLM pool, port 8000
    scripts/serve --port 0 --no-services --root /tmp/ws

Serves the webhook API (jobs/run, run_wait_result, jobs_u/get, completed/get_result_maybe, cancel),
POST /api/users/tokens/create and the HTTP routes of f/**/*.http_trigger.yaml, with Windmill's token
scopes. Prints the base URL, an unscoped admin token for this server only, and how to mint a scoped
token; runs until interrupted. Jobs run through the local runner, at most --max-jobs at once.
"""

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from embedded.runner.jobs import JobQueue, Jobs
from embedded.runner.process import REPO_ROOT
from embedded.runner.report import Reporter
from embedded.runner.workspace import Workspace
from embedded.tokens import Tokens
from embedded.wmapi import WindmillApi, load_routes

EXAMPLE_FLOW = "f/matter/process_matter"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="serve", description="Serve a local Windmill API (webhooks, scoped tokens).")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one")
    p.add_argument("--workspace", default="local", help="workspace id in URLs (/api/w/<workspace>/...)")
    p.add_argument("--env", default="local", help="read resources and variables from resources/<env>/")
    p.add_argument("--max-jobs", type=int, default=2, help="jobs running at once; more wait in the queue")
    p.add_argument("--workers", type=int, default=4, help="step processes at once within one job")
    p.add_argument("--wait-timeout", type=float, default=600, help="seconds run_wait_result waits")
    p.add_argument("--pool", choices=["sim", "local-models"], default="sim", help="LLM backend for the services")
    p.add_argument("--no-services", action="store_true", help="do not start Azurite and the LLM pool")
    p.add_argument("--root", type=Path, default=REPO_ROOT, help="workspace root (default: this repo)")
    p.add_argument("-v", "--verbose", action="store_true", help="echo each job's output on stderr")
    return p


@asynccontextmanager
async def _services(a: argparse.Namespace) -> AsyncIterator[dict[str, str]]:
    if a.no_services:
        yield {}
        return
    from embedded.services import local_services

    async with local_services(pool=a.pool) as variables:
        yield variables


def _banner(api: WindmillApi, a: argparse.Namespace) -> str:
    scope = json.dumps({"label": "caller", "scopes": [f"jobs:run:flows:{EXAMPLE_FLOW}"]})
    lines = [
        f"Local Windmill API on {api.url} (workspace {api.ws.id!r}, resources/{a.env}, {a.max_jobs} job(s) at once)",
        f"export WM_BASE_URL={api.url} WM_WORKSPACE={api.ws.id}",
        "# an unscoped admin token, valid for this server only, until it stops:",
        f"export WM_ADMIN_TOKEN={api.token}",
        f"# mint a token that can only start {EXAMPLE_FLOW} and follow its runs:",
        f"export WM_TOKEN=$(curl -s -X POST $WM_BASE_URL/api/users/tokens/create -H \"Authorization: Bearer "
        f"$WM_ADMIN_TOKEN\" -H 'Content-Type: application/json' -d '{scope}')",
        "scripts/trigger -d '{\"matter_id\": \"M-2024-0137\"}'   # scripts/demo once puts that sample matter in the store",
    ]
    lines += [f"# HTTP route: {r.http_method.upper()} {api.url}{r.url(api.ws.id)} -> {r.script_path} "
              f"({r.request_type}, auth {r.authentication_method})" for r in api.routes]
    return "\n".join(lines)


async def serve(a: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with _services(a) as variables:
        ws = Workspace(a.root, env=a.env, variables=variables, id=a.workspace)
        jobs, tokens = Jobs(), Tokens()
        queue = JobQueue(ws, jobs, limit=a.max_jobs, workers=a.workers, verbose=a.verbose)
        admin = tokens.create("admin")
        api = WindmillApi(ws, jobs, admin, Reporter(a.verbose).progress, tokens=tokens, queue=queue,
                          routes=load_routes(ws.root), host=a.host, port=a.port, wait_timeout=a.wait_timeout)
        async with api:
            print(_banner(api, a), flush=True)
            await stop.wait()
            print("serve: stopping; canceling running jobs", file=sys.stderr, flush=True)
            await queue.aclose()


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    try:
        asyncio.run(serve(a))
    except OSError as e:
        print(f"serve: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
