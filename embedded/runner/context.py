"""What all the jobs of one run share: workspace, local API, V8 context, worker pool, reporter."""

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from embedded.jseval import JsEval
from embedded.runner.jobs import Jobs
from embedded.runner.report import Reporter
from embedded.runner.spec import Flow, load_flow
from embedded.runner.workspace import Workspace
from embedded.wmapi import WindmillApi


@dataclass
class Run:
    ws: Workspace
    api: WindmillApi
    js: JsEval
    jobs: Jobs
    report: Reporter
    workers: asyncio.Semaphore  # like worker replicas: bounds concurrent job processes
    flows: dict[str, Flow] = field(default_factory=dict)

    def flow(self, path: str) -> Flow:
        if path not in self.flows:
            self.flows[path] = load_flow(self.ws, path)
        return self.flows[path]


@asynccontextmanager
async def open_run(ws: Workspace, max_workers: int, verbose: bool, jobs: Jobs | None = None) -> AsyncIterator[Run]:
    """`jobs`: a registry shared with the caller (the API server's), else a fresh one."""
    jobs, report = jobs if jobs is not None else Jobs(), Reporter(verbose)

    async def lookup(kind: Literal["resource", "variable"], path: str) -> Any:
        return ws.resource(path) if kind == "resource" else ws.variable(path)

    api = WindmillApi(ws, jobs, secrets.token_urlsafe(24), report.progress)
    async with api, JsEval(lookup) as js:
        yield Run(ws, api, js, jobs, report, asyncio.Semaphore(max_workers))
