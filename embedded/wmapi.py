"""The part of Windmill's HTTP API that the `wmill` Python client calls from inside a job.

Served on 127.0.0.1 (random port) for the length of a run; job processes find it through
BASE_INTERNAL_URL and authenticate with WM_TOKEN. URLs, methods and response shapes follow
wmill 1.850 (wmill/client.py). Routes are grouped by API area in `_routes`; job-launching
endpoints (jobs/run/..., run_wait_result, cancel) and scoped tokens belong there too.
"""

from collections.abc import Awaitable, Callable

from aiohttp import web

from embedded.runner.errors import InvalidRun
from embedded.runner.jobs import Job, Jobs
from embedded.runner.workspace import NotFound, Workspace

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC = {"/api/version"}


class WindmillApi:
    def __init__(self, ws: Workspace, jobs: Jobs, token: str, on_progress: Callable[[Job, int], None]) -> None:
        self.ws, self.jobs, self.token, self.on_progress = ws, jobs, token, on_progress
        self.url = ""  # http://127.0.0.1:<port>, without /api, as BASE_INTERNAL_URL wants it
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> "WindmillApi":
        app = web.Application(middlewares=[self._guard])
        app.add_routes(self._routes())
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner:
            await self._runner.cleanup()

    def _routes(self) -> list[web.RouteDef]:
        w = "/api/w/{workspace}"
        return [
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
            # jobs (wmill.get_job, get_root_job_id, set_progress, get_progress)
            web.get(w + "/jobs_u/get/{id}", self.job_get),
            web.get(w + "/jobs_u/get_root_job_id/{id}", self.job_root),
            web.post(w + "/job_metrics/set_progress/{id}", self.progress_set),
            web.get(w + "/job_metrics/get_progress/{id}", self.progress_get),
            web.route("*", "/api/{tail:.*}", self.not_implemented),  # last: only what nothing above took
        ]

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in PUBLIC and _token(request) != self.token:
            return web.Response(status=401, text="Unauthorized: missing or wrong bearer token")
        if request.match_info.get("workspace", self.ws.id) != self.ws.id:
            return web.Response(status=404, text=f"workspace not found: {request.match_info['workspace']}")
        try:
            return await handler(request)
        except NotFound as e:
            return web.Response(status=404, text=f"Not found: {e}")
        except (InvalidRun, ValueError, KeyError) as e:
            return web.Response(status=400, text=f"Bad request: {e}")

    async def not_implemented(self, request: web.Request) -> web.Response:
        return web.Response(status=501, text=f"the local runner does not implement {request.method} {request.path}")

    async def version(self, request: web.Request) -> web.Response:
        return web.Response(text="local-runner")

    async def whoami(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"email": "local@localhost", "username": "local", "is_admin": True, "is_super_admin": True,
             "workspace_id": self.ws.id}
        )

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

    async def job_get(self, request: web.Request) -> web.Response:
        return web.json_response(self._job(request).as_json())

    async def job_root(self, request: web.Request) -> web.Response:
        return web.json_response(self._job(request).root.id)

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


def _token(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    return auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else request.query.get("token")
