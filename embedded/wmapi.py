"""The part of Windmill's HTTP API that the local runner serves, in two roles.

Inside a run (embedded.runner.context): what the `wmill` client calls from a job process, on
127.0.0.1 (random port) for the length of the run. Job processes find it through BASE_INTERNAL_URL
and authenticate with the run's job token (WM_TOKEN), which is unscoped as a Windmill job token is.

As a local Windmill (scripts/serve): the same routes plus what callers use, the webhook API
(jobs/run/{f,p}, run_wait_result/{f,p}, jobs_u/get, completed/get_result_maybe, completed/get_result,
queue/cancel), POST /api/users/tokens/create, and the HTTP routes of `*.http_trigger.yaml` files
(/api/r/...). Tokens and their scopes are checked as Windmill checks them (embedded.tokens); jobs run
through a JobQueue. URLs, methods and response shapes follow wmill 1.850 (wmill/client.py) and
windmill-api's handlers.
"""

import json
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from aiohttp import web

from embedded.runner.errors import InvalidRun
from embedded.runner.jobs import Job, JobQueue, Jobs, Kind, ResumeEvent, flow_status
from embedded.runner.spec import Flow, load_flow
from embedded.runner.workspace import NotFound, Workspace
from embedded.tokens import (
    Denied,
    Token,
    Tokens,
    admits,
    check_scope,
    covers,
    read_confinement,
    read_only_access,
    route_access,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC = {"/api/version"}
# Resume and cancel URLs of an approval step: their signature is the authorization (jobs_u, as in Windmill).
SIGNED = re.compile(r"^/api/w/[^/]+/jobs_u/(?:resume|cancel)/[^/]+/\d+/[0-9a-f]+$")
UNSCOPED = Token("unscoped", None)
CALLER = web.RequestKey("caller", Token)  # the token a request came with


@dataclass(frozen=True)
class HttpRoute:
    """An HTTP route trigger (`<path>.http_trigger.yaml`), served at /api/r/[<workspace>/]<route_path>."""

    path: str
    script_path: str
    is_flow: bool
    route_path: str
    http_method: str
    request_type: str
    authentication_method: str
    workspaced_route: bool = False
    wrap_body: bool = False

    def url(self, workspace: str) -> str:
        return f"/api/r/{workspace}/{self.route_path}" if self.workspaced_route else f"/api/r/{self.route_path}"


def load_routes(root: Path) -> list[HttpRoute]:
    routes = []
    for file in sorted((root / "f").rglob("*.http_trigger.yaml")):
        data = yaml.safe_load(file.read_text())
        path = file.relative_to(root).as_posix().removesuffix(".http_trigger.yaml")
        fields = {k: data[k] for k in HttpRoute.__dataclass_fields__ if k in data and k != "path"}
        routes.append(HttpRoute(path=path, **fields))
    return routes


class WindmillApi:
    def __init__(
        self, ws: Workspace, jobs: Jobs, token: str, on_progress: Callable[[Job, int], None], *,
        tokens: Tokens | None = None, queue: JobQueue | None = None, routes: Sequence[HttpRoute] = (),
        host: str = "127.0.0.1", port: int = 0, wait_timeout: float = 600.0,
    ) -> None:
        """`token` is always accepted, unscoped: the run's job token, or the server's admin token.
        `tokens`, `queue` and `routes` make it a local Windmill that callers can start jobs on."""
        self.ws, self.jobs, self.token, self.on_progress = ws, jobs, token, on_progress
        self.tokens, self.queue, self.routes = tokens, queue, list(routes)
        self.host, self.port, self.wait_timeout = host, port, wait_timeout
        self.url = ""  # http://127.0.0.1:<port>, without /api, as BASE_INTERNAL_URL wants it
        self._runner: web.AppRunner | None = None
        self._flows: dict[str, Flow] = {}

    async def __aenter__(self) -> "WindmillApi":
        app = web.Application(middlewares=[self._guard])
        app.add_routes(self._routes())
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner:
            await self._runner.cleanup()

    def _routes(self) -> list[web.RouteDef]:
        w = "/api/w/{workspace}"
        routes = [
            web.get("/api/version", self.version),
            web.get("/api/users/whoami", self.whoami),
            # resources and state (wmill.get_resource, set_resource, get_state, set_state)
            web.get(w + "/resources/get_value_interpolated/{path:.+}", self.resource_interpolated),
            web.get(w + "/resources/get_value/{path:.+}", self.resource_value),
            web.get(w + "/resources/get/{path:.+}", self.resource_get),
            web.post(w + "/resources/create", self.resource_create),
            web.post(w + "/resources/update_value/{path:.+}", self.resource_update),
            # variables (wmill.get_variable)
            web.get(w + "/variables/get_value/{path:.+}", self.variable_value),
            # jobs (wmill.get_job, get_root_job_id, set_progress, get_progress, wait_job, get_result)
            web.get(w + "/jobs_u/get/{id}", self.job_get),
            web.get(w + "/jobs_u/get_root_job_id/{id}", self.job_root),
            web.get(w + "/jobs_u/completed/get_result_maybe/{id}", self.job_result_maybe),
            web.get(w + "/jobs_u/completed/get_result/{id}", self.job_result),
            web.post(w + "/job_metrics/set_progress/{id}", self.progress_set),
            web.get(w + "/job_metrics/get_progress/{id}", self.progress_get),
            # approval steps (wmill.get_resume_urls; the resume and cancel URLs it returns)
            web.get(w + "/jobs/resume_urls/{id}/{resume_id}", self.job_resume_urls),
            web.route("*", w + "/jobs_u/resume/{id}/{resume_id}/{signature}", self.job_resume),
            web.route("*", w + "/jobs_u/cancel/{id}/{resume_id}/{signature}", self.job_resume),
        ]
        if self.queue is not None:  # a local Windmill: callers start and cancel jobs
            routes += [
                web.post(w + "/jobs/run/{kind:[fp]}/{path:.+}", self.run_async),
                web.post(w + "/jobs/run_wait_result/{kind:[fp]}/{path:.+}", self.run_wait_result),
                web.post(w + "/jobs_u/queue/cancel/{id}", self.job_cancel),
                web.route("*", "/api/r/{route:.*}", self.http_route),
            ]
        if self.tokens is not None:
            routes.append(web.post("/api/users/tokens/create", self.token_create))
        routes.append(web.route("*", "/api/{tail:.*}", self.not_implemented))  # last: what nothing above took
        return routes

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if request.path not in PUBLIC and not request.path.startswith("/api/r/") and not SIGNED.match(request.path):
                caller = self._caller(request)
                if caller is None:
                    return web.Response(status=401, text="Unauthorized: missing or wrong bearer token")
                if request.match_info.get("workspace", self.ws.id) != self.ws.id:
                    return web.Response(status=404, text=f"workspace not found: {request.match_info['workspace']}")
                route_access(caller.scopes, request.path, request.method)
                if caller.read_only:
                    read_only_access(request.path, request.method)
                request[CALLER] = caller
            return await handler(request)
        except Denied as e:
            return web.Response(status=e.status, text=str(e))
        except NotFound as e:
            return web.Response(status=404, text=f"Not found: {e}")
        except (InvalidRun, ValueError, KeyError) as e:
            return web.Response(status=400, text=f"Bad request: {e}")

    def _caller(self, request: web.Request) -> Token | None:
        secret = _token(request)
        if secret is None:
            return None
        if secrets.compare_digest(secret, self.token):
            return UNSCOPED
        return self.tokens.get(secret) if self.tokens else None

    async def not_implemented(self, request: web.Request) -> web.Response:
        return web.Response(status=501, text=f"the local runner does not implement {request.method} {request.path}")

    async def version(self, request: web.Request) -> web.Response:
        return web.Response(text="local-runner")

    async def whoami(self, request: web.Request) -> web.Response:
        caller: Token = request[CALLER]
        return web.json_response(
            {"email": "local@localhost", "username": caller.owner, "is_admin": True, "is_super_admin": True,
             "workspace_id": self.ws.id, "token_label": caller.label, "scopes": caller.scopes}
        )

    # --- resources, variables ---------------------------------------------------------------------

    async def resource_interpolated(self, request: web.Request) -> web.Response:
        return web.json_response(self.ws.resource(request.match_info["path"]))

    async def resource_value(self, request: web.Request) -> web.Response:
        return web.json_response(self.ws.resource_info(request.match_info["path"])["value"])

    async def resource_get(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        return web.json_response({"path": path, "workspace_id": self.ws.id, **self.ws.resource_info(path)})

    async def resource_create(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.ws.set_resource(body["path"], body.get("value"), body.get("resource_type") or "any")
        return web.Response(status=201, text=body["path"])

    async def resource_update(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.ws.set_resource(request.match_info["path"], body.get("value"))
        return web.Response(text=f"resource {request.match_info['path']} updated")

    async def variable_value(self, request: web.Request) -> web.Response:
        return web.json_response(self.ws.variable(request.match_info["path"]))

    # --- jobs: read -------------------------------------------------------------------------------

    async def job_get(self, request: web.Request) -> web.Response:
        job = self._readable(request)
        out = job.as_json()
        if job.kind == "flow" and (flow := self._flow(job.path)):
            out["flow_status"] = flow_status(self.jobs, job, flow)
        return web.json_response(out)

    async def job_root(self, request: web.Request) -> web.Response:
        return web.json_response(self._job(request).root.id)

    async def job_result_maybe(self, request: web.Request) -> web.Response:
        job = self._readable(request)
        return web.json_response({"completed": job.done, "result": job.result if job.done else None,
                                  "success": job.success, "started": job.started_at is not None})

    async def job_result(self, request: web.Request) -> web.Response:
        job = self._readable(request)
        if not job.done:
            raise NotFound(f"completed job {job.id}")
        return web.json_response(job.result)

    async def progress_set(self, request: web.Request) -> web.Response:
        job = self._job(request)
        job.progress = int((await request.json())["percent"])
        self.on_progress(job, job.progress)
        return web.Response(text="progress updated")

    async def progress_get(self, request: web.Request) -> web.Response:
        return web.json_response(self._job(request).progress)

    def _job(self, request: web.Request) -> Job:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            raise NotFound(f"job {request.match_info['id']}")
        return job

    def _readable(self, request: web.Request) -> Job:
        """The job, if the caller may read it: a run-scoped token reads only jobs of what it may run."""
        job = self._job(request)
        kind = "flows" if job.kind == "flow" else "scripts"
        if not admits(read_confinement(request[CALLER].scopes), kind, job.path):
            raise Denied(403, f"You do not have access to run {job.id}: the token may read only runs of "
                              f"what its jobs:run scopes name")
        return job

    def _flow(self, path: str) -> Flow | None:
        if path not in self._flows:
            try:
                self._flows[path] = load_flow(self.ws, path)
            except InvalidRun:
                return None
        return self._flows[path]

    # --- approval steps ---------------------------------------------------------------------------

    def resume_urls(self, job_id: str, resume_id: int, approver: str | None = None) -> dict[str, str]:
        """Windmill's ResumeUrls of a step job: signed with the registry's key, so any API sharing it accepts them."""
        signature = self.jobs.resume_signature(job_id, resume_id, approver)
        query = f"?approver={quote(approver)}" if approver else ""
        tail = f"{job_id}/{resume_id}/{signature}{query}"
        base = f"{self.url}/api/w/{self.ws.id}/jobs_u"
        return {"approvalPage": f"{self.url}/approve/{self.ws.id}/{tail}", "resume": f"{base}/resume/{tail}",
                "cancel": f"{base}/cancel/{tail}"}

    async def job_resume_urls(self, request: web.Request) -> web.Response:
        job = self._job(request)
        return web.json_response(self.resume_urls(job.id, int(request.match_info["resume_id"]),
                                                  request.query.get("approver") or None))

    async def job_resume(self, request: web.Request) -> web.Response:
        """POST (or GET) a resume or cancel URL; the body (JSON) is the resume payload."""
        job_id, resume_id = request.match_info["id"], int(request.match_info["resume_id"])
        approver = request.query.get("approver") or None
        if not self.jobs.check_signature(job_id, resume_id, approver, request.match_info["signature"]):
            return web.Response(status=401, text="Invalid signature")
        job = self._job(request)
        if job.root.done:
            return web.Response(status=400, text=f"the flow of job {job_id} is no longer waiting: it has finished")
        approved = "/jobs_u/resume/" in request.path
        payload = await _json_body(request) if request.method == "POST" else dict(request.query)
        self.jobs.resume(job_id, ResumeEvent(resume_id, approver, approved, payload))
        return web.Response(text=f"{'resumed' if approved else 'canceled'} job {job_id}")

    # --- jobs: start, wait, cancel (local Windmill only) ------------------------------------------

    async def run_async(self, request: web.Request) -> web.Response:
        job = await self._start(request, "flow" if request.match_info["kind"] == "f" else "script",
                                request.match_info["path"], request[CALLER])
        return web.Response(status=201, text=job.id)

    async def run_wait_result(self, request: web.Request) -> web.Response:
        job = await self._start(request, "flow" if request.match_info["kind"] == "f" else "script",
                                request.match_info["path"], request[CALLER])
        return await self._result_response(job)

    async def job_cancel(self, request: web.Request) -> web.Response:
        assert self.queue
        job = self._job(request)
        body = await _json_body(request)
        reason = (body.get("reason") if isinstance(body, dict) else None) or f"canceled by {request[CALLER].owner}"
        if job.done:
            return web.Response(text=f"queued job id {job.id} is already completed")
        if not self.queue.cancel(job, reason):
            raise NotFound(f"queued job id {job.id} (a step of a flow: cancel the flow)")
        return web.Response(text=job.id)

    async def http_route(self, request: web.Request) -> web.Response:
        """An HTTP route trigger. With `authentication_method: windmill` any valid token of a user who can
        see the trigger may call it, whatever its scopes, and the job runs as the trigger's owner: this is
        what windmill-api's http trigger handler does (get_http_route_trigger)."""
        wanted = request.match_info["route"].strip("/")
        route = next((r for r in self.routes if r.url(self.ws.id) == f"/api/r/{wanted}"
                      and r.http_method.lower() == request.method.lower()), None)
        if route is None:
            raise NotFound(f"Trigger at /{wanted}")
        caller: Token | None = None
        if route.authentication_method == "windmill":
            caller = self._caller(request)
            if caller is None:
                return web.Response(status=401, text="Requires authentication")
        elif route.authentication_method != "none":
            return web.Response(status=501, text=f"the local runner does not implement {route.authentication_method} route auth")
        owner = UNSCOPED if caller else Token(f"HTTP-{route.path}", None, owner=f"HTTP-{route.path}")
        job = await self._start(request, "flow" if route.is_flow else "script", route.script_path, owner,
                                wrap=route.wrap_body)
        if route.request_type == "async":
            return web.Response(status=201, text=job.id)
        return await self._result_response(job)

    async def _start(self, request: web.Request, kind: Kind, path: str, caller: Token, wrap: bool = False) -> Job:
        assert self.queue
        check_scope(caller.scopes, f"jobs:run:{kind}s:{path}")
        body = await _json_body(request)
        args = body if isinstance(body, dict) and not wrap else {"body": body}
        try:
            if kind == "flow":
                self.ws.flow_file(path)
            else:
                self.ws.script_file(path)
        except InvalidRun as e:
            raise NotFound(str(e)) from None
        if kind == "flow":
            load_flow(self.ws, path).with_defaults(args)  # InvalidRun (400) for missing inputs, before queuing
        elif missing := [n for n in self.ws.required_args(path) if n not in args]:
            raise InvalidRun(f"script {path}: missing required argument(s): {', '.join(missing)}")
        return self.queue.submit(kind, path, args, caller.owner)

    async def _result_response(self, job: Job) -> web.Response:
        """run_wait_result: the result, 200, or 422 when the job failed (windmill-api result_to_response)."""
        assert self.queue
        if not await self.queue.wait(job, self.wait_timeout):
            self.queue.cancel(job, f"no result after {self.wait_timeout:g}s")
            return web.Response(status=500, text=f"timeout after {self.wait_timeout:g}s")
        return web.json_response(job.result, status=200 if job.success else 422)

    # --- tokens (local Windmill only) -------------------------------------------------------------

    async def token_create(self, request: web.Request) -> web.Response:
        assert self.tokens is not None
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object: {label, scopes, expiration, read_only}")
        scopes = body.get("scopes") or None
        caller: Token = request[CALLER]
        if not covers(caller.scopes, scopes):
            raise Denied(403, "A scope-restricted token cannot create a token with broader privileges than its own")
        expiration = body.get("expiration")
        secret = self.tokens.create(
            str(body.get("label") or "token"), scopes, read_only=bool(body.get("read_only")),
            expires_at=datetime.fromisoformat(expiration.replace("Z", "+00:00")) if expiration else None,
        )
        return web.Response(status=201, text=secret)


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"the body is not JSON: {e}") from None


def _token(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    return auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else request.query.get("token")
