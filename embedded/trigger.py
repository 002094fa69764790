"""`scripts/trigger`: start a flow or script through Windmill's webhook API, follow it, print its result.

    export WM_BASE_URL=https://windmill.example.com WM_WORKSPACE=matters
    export WM_TOKEN=...          # from the environment only: never an argument, never in shell history
    scripts/trigger -d '{"matter_id": "M-2024-0137"}'                   # f/matter/process_matter
    scripts/trigger f/matter/process_document -d @args.json --sync      # run_wait_result, for short runs
    scripts/trigger --route matters/process -d '{"matter_id": "M-1"}'   # through an HTTP route trigger

Async runs: POST /api/w/<ws>/jobs/run/f/<path> answers a job id; jobs_u/get/<id> is polled with
backoff and its flow_status shown as progress; jobs_u/completed/get_result_maybe/<id> gives the
result, printed as JSON on stdout. Ctrl-C asks Windmill to cancel the job (the token needs jobs:write
for that; a run-only token cannot, and the job goes on).

Standard library only: a caller can copy this one file. Exit codes: 0 the job succeeded, 1 it failed,
2 refused or invalid (no token, HTTP 4xx), 3 gave up (timeout, server unreachable or failing),
130 interrupted.
"""

import argparse
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, NoReturn

DEFAULT_PATH = "f/matter/process_matter"
FIRST_DELAY, MAX_DELAY, MAX_ERRORS = 0.25, 5.0, 8


class Stop(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Api:
    def __init__(self, base_url: str, workspace: str, token: str, timeout: float = 60) -> None:
        self.base = base_url.rstrip("/").removesuffix("/api")
        self.workspace, self.token, self.timeout = workspace, token, timeout

    def url(self, path: str) -> str:
        """The URL of /api<path>; a `path` starting with /w/ is in the workspace."""
        if path.startswith("/w/"):
            path = f"/w/{urllib.parse.quote(self.workspace)}/{path[3:]}"
        return f"{self.base}/api{path}"

    def call(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> tuple[int, bytes]:
        url = self.url(path)
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            raise Stop(3, f"{method} {url}: {getattr(e, 'reason', e)}") from None


def _refused(api: Api, method: str, path: str, status: int, body: bytes) -> Stop:
    text = body.decode(errors="replace").strip()[:500]
    hint = {401: " (is WM_TOKEN set and valid for this server?)",
            403: " (the token's scopes do not allow this)"}.get(status, "")
    return Stop(2 if status < 500 else 3, f"{method} {api.url(path)}: HTTP {status}: {text}{hint}")


def describe(job: dict[str, Any]) -> str:
    """One line of progress from a Job object (QueuedJob or CompletedJob, with its flow_status)."""
    if job.get("type") == "CompletedJob":
        return "canceled" if job.get("canceled") else ("succeeded" if job.get("success") else "failed")
    if not job.get("running"):
        return "queued, waiting for a worker"
    status = job.get("flow_status") or {}
    modules = status.get("modules") or []
    if not modules:
        return "running" + (f" {job['progress']}%" if job.get("progress") is not None else "")
    i = min(int(status.get("step") or 0), len(modules) - 1)
    m = modules[i]
    text = f"running step {i + 1}/{len(modules)} {m.get('id')}"
    if "flow_jobs" in m:
        states = m.get("flow_jobs_success") or []
        done, failed, running = states.count(True), states.count(False), states.count(None)
        total = (m.get("iterator") or {}).get("itered_len")
        text += f": {done}/{total if total is not None else '?'} done"
        text += f", {running} running" if running else ""
        text += f", {failed} failed" if failed else ""
    elif m.get("progress") is not None:
        text += f" {m['progress']}%"
    return text


def follow(api: Api, job_id: str, timeout: float | None, say: Any) -> dict[str, Any]:
    """Poll until the job completes (backoff up to MAX_DELAY s); its get_result_maybe answer."""
    t0, delay, errors, last = time.monotonic(), FIRST_DELAY, 0, ""
    while True:
        status, body = api.call("GET", f"/w/jobs_u/get/{job_id}?no_logs=true")
        if status == 200:
            errors = 0
            job = json.loads(body)
            line = describe(job)
            if line != last:
                say(f"[{time.monotonic() - t0:7.1f}s] {line}")
                last, delay = line, FIRST_DELAY
            if job.get("type") == "CompletedJob":
                break
        elif status < 500:
            raise _refused(api, "GET", f"/w/jobs_u/get/{job_id}", status, body)
        else:
            errors += 1
            if errors >= MAX_ERRORS:
                raise _refused(api, "GET", f"/w/jobs_u/get/{job_id}", status, body)
        if timeout is not None and time.monotonic() - t0 > timeout:
            raise Stop(3, f"job {job_id} still running after {timeout:g}s; follow it with jobs_u/get/{job_id}")
        time.sleep(delay)
        delay = min(delay * 1.6, MAX_DELAY)
    status, body = api.call("GET", f"/w/jobs_u/completed/get_result_maybe/{job_id}")
    if status != 200:
        raise _refused(api, "GET", f"/w/jobs_u/completed/get_result_maybe/{job_id}", status, body)
    return json.loads(body)


def cancel(api: Api, job_id: str) -> str:
    status, body = api.call("POST", f"/w/jobs_u/queue/cancel/{job_id}",
                            {"reason": "interrupted by the caller (scripts/trigger)"}, timeout=10)
    if status == 200:
        return f"canceled job {job_id}"
    return f"could not cancel job {job_id} (HTTP {status}: {body.decode(errors='replace')[:200]}); it goes on"


def data_of(result: Any) -> Any:
    """A step result made for the Windmill UI ({"render_all": [..., {"json": data}]}) as its data."""
    if isinstance(result, dict) and list(result) == ["render_all"] and isinstance(result["render_all"], list):
        found = [item["json"] for item in result["render_all"] if isinstance(item, dict) and list(item) == ["json"]]
        if len(found) == 1:
            return found[0]
    return result


def _error_line(result: Any) -> str:
    error = result.get("error") if isinstance(result, dict) else None
    if not isinstance(error, dict):
        return json.dumps(result)[:300]
    where = f"step {error['step_id']!r}: " if error.get("step_id") else ""
    return f"{where}{error.get('name', 'Error')}: {error.get('message', '')}"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="trigger", description="Start a Windmill flow or script through the webhook API and follow it. "
        "The token comes from WM_TOKEN only; WM_BASE_URL and WM_WORKSPACE give the server and workspace.")
    p.add_argument("path", nargs="?", default=DEFAULT_PATH, help=f"flow (or --script) path, default {DEFAULT_PATH}")
    p.add_argument("-d", "--data", default="{}", help="arguments: a JSON object, or @file.json")
    p.add_argument("--script", action="store_true", help="path is a script (jobs/run/p/...), not a flow")
    p.add_argument("--route", help="call the HTTP route /api/r/<ROUTE> instead of the webhook (path is ignored)")
    p.add_argument("--sync", action="store_true", help="wait in one request (run_wait_result); for short runs")
    p.add_argument("--no-wait", action="store_true", help="print the job id and return")
    p.add_argument("--timeout", type=float, help="give up following after this many seconds (the job goes on)")
    p.add_argument("--base-url", default=os.environ.get("WM_BASE_URL"), help="default: $WM_BASE_URL")
    p.add_argument("--workspace", default=os.environ.get("WM_WORKSPACE"), help="default: $WM_WORKSPACE")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.add_argument("--raw", action="store_true", help="print a render_all result as it is, not just its json part")
    return p


def _data(text: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(text[1:]).read_text() if text.startswith("@") else text)
    except (OSError, json.JSONDecodeError) as e:
        raise Stop(2, f"-d: {e}") from None
    if not isinstance(data, dict):
        raise Stop(2, "-d: the arguments must be a JSON object")
    return data


def run(a: argparse.Namespace) -> int:
    say = (lambda _: None) if a.quiet else (lambda line: print(f"trigger: {line}", file=sys.stderr, flush=True))
    token = os.environ.get("WM_TOKEN", "").strip()
    if not token:
        raise Stop(2, "set WM_TOKEN to a Windmill token (scope e.g. jobs:run:flows:f/matter/process_matter)")
    if not a.base_url or not a.workspace:
        raise Stop(2, "set WM_BASE_URL and WM_WORKSPACE (or pass --base-url and --workspace)")
    api, args = Api(a.base_url, a.workspace, token), _data(a.data)
    kind = "p" if a.script else "f"
    if a.route:
        path = f"/r/{a.route.strip('/')}"
    else:
        path = f"/w/jobs/{'run_wait_result' if a.sync else 'run'}/{kind}/{a.path}"
    status, body = api.call("POST", path, args, timeout=None if a.sync else 60)
    if a.sync or (a.route and status in (200, 422)):
        if status not in (200, 422):
            raise _refused(api, "POST", path, status, body)
        result = json.loads(body) if body else None
        print(json.dumps(result if a.raw else data_of(result), indent=2))
        if status == 422:
            say(f"failed: {_error_line(result)}")
        return 0 if status == 200 else 1
    if status != 201:
        raise _refused(api, "POST", path, status, body)
    job_id = body.decode().strip().strip('"')
    say(f"started {a.route or a.path} as job {job_id}")
    if a.no_wait:
        print(job_id)
        return 0
    t0 = time.monotonic()
    try:
        outcome = follow(api, job_id, a.timeout, say)
    except KeyboardInterrupt:
        print(f"trigger: interrupted; {cancel(api, job_id)}", file=sys.stderr, flush=True)
        return 130
    result = outcome.get("result")
    print(json.dumps(result if a.raw else data_of(result), indent=2))
    if outcome.get("success"):
        say(f"job {job_id} succeeded in {time.monotonic() - t0:.1f}s")
        return 0
    say(f"job {job_id} failed: {_error_line(result)}")
    return 1


def main(argv: list[str] | None = None) -> NoReturn:
    # Ctrl-C (SIGINT) cancels the job, however we were started: a process started in the background by a
    # non-interactive shell (`cmd &`, nohup, CI runners) inherits SIGINT ignored, and Python then keeps it so.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        sys.exit(run(_parser().parse_args(argv)))
    except Stop as e:
        print(f"trigger: {e}", file=sys.stderr)
        sys.exit(e.code)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
