"""scripts/serve and scripts/trigger end to end, as subprocesses: the webhook API, scoped tokens and
their refusals, progress, failures, cancel, the job queue's bound and the HTTP route trigger."""

import json
import os
import queue
import signal
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.windmill.conftest import ROOT

SERVE, TRIGGER = ROOT / "scripts" / "serve", ROOT / "scripts" / "trigger"
TICK = """
    import time
    import wmill

    def main(i: int, pause: float = 0.1):
        store = wmill.get_resource("f/t/store")      # the job's own token, not the caller's
        for percent in (25, 50, 75):
            wmill.set_progress(percent)
            time.sleep(pause)
        return {"i": i, "store": store["name"]}
"""
FLOWS = {
    "count": """
        summary: items, then a parallel loop, then one more step
        value:
          modules:
            - id: items
              value: {type: script, path: f/t/items, input_transforms: {n: {type: javascript, expr: flow_input.n}}}
            - id: each
              value:
                type: forloopflow
                iterator: {type: javascript, expr: results.items}
                skip_failures: false
                parallel: true
                parallelism: {type: static, value: 2}
                modules:
                  - id: tick
                    value: {type: script, path: f/t/tick, input_transforms: {i: {type: javascript, expr: flow_input.iter.value}, pause: {type: javascript, expr: flow_input.pause}}}
            - id: last
              value: {type: script, path: f/t/tick, input_transforms: {i: {type: static, value: 99}, pause: {type: javascript, expr: flow_input.pause}}}
        schema: {properties: {n: {type: integer}, pause: {type: number, default: 0.1}}, required: [n]}
    """,
    "other": """
        summary: one step
        value:
          modules:
            - id: one
              value: {type: script, path: f/t/tick, input_transforms: {i: {type: static, value: 1}}}
    """,
    "slow": """
        summary: one slow step
        value:
          modules:
            - id: wait
              value: {type: script, path: f/t/tick, input_transforms: {i: {type: static, value: 0}, pause: {type: static, value: 20}}}
    """,
    "fails": """
        summary: fails in its second step
        value:
          modules:
            - id: items
              value: {type: script, path: f/t/items, input_transforms: {n: {type: static, value: 1}}}
            - id: boom
              value: {type: script, path: f/t/boom, input_transforms: {}}
    """,
}
FILES = {
    "f/t/tick.py": TICK,
    "f/t/items.py": "def main(n: int):\n    return list(range(n))\n",
    "f/t/boom.py": "def main():\n    raise RuntimeError('boom')\n",
    "resources/local/f/t/store.resource.yaml": "value: {name: secret-store}\nresource_type: any\n",
    "resources/local/f/t/secret.variable.yaml": "value: s3cret\nis_secret: true\n",
    "f/matter/count.http_trigger.yaml": """
        script_path: f/matter/count
        is_flow: true
        route_path: count
        workspaced_route: true
        http_method: post
        request_type: async
        authentication_method: windmill
        is_static_website: false
        wrap_body: false
        raw_string: false
    """,
    **{f"flows/{name}/flow.yaml": text for name, text in FLOWS.items()},
}


class Server:
    def __init__(self, proc: subprocess.Popen[str], url: str, admin: str, log: Path) -> None:
        self.proc, self.url, self.admin, self.log = proc, url, admin, log
        self.http = httpx.Client(base_url=url, timeout=30)

    def call(self, method: str, path: str, token: str | None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.request(method, path, headers=headers, **kw)

    def mint(self, *scopes: str) -> str:
        r = self.call("POST", "/api/users/tokens/create", self.admin, json={"label": "test", "scopes": list(scopes)})
        assert r.status_code == 201, r.text
        return r.text

    def start(self, flow: str, args: dict[str, Any], token: str | None = None) -> str:
        r = self.call("POST", f"/api/w/local/jobs/run/f/{flow}", token or self.admin, json=args)
        assert r.status_code == 201, r.text
        return r.text

    def job(self, job_id: str, token: str | None = None) -> dict[str, Any]:
        r = self.call("GET", f"/api/w/local/jobs_u/get/{job_id}", token or self.admin)
        assert r.status_code == 200, r.text
        return r.json()

    def cancel(self, job_id: str) -> None:
        self.call("POST", f"/api/w/local/jobs_u/queue/cancel/{job_id}", self.admin, json={"reason": "test cleanup"})

    def until(self, job_id: str, test: Any, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if test(job):
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id}: condition not met: {job}\n{self.diagnosis()}")

    def diagnosis(self) -> str:
        """The tail of the server's log: which jobs ran, were killed, or still hold the queue's slots."""
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])
        return f"server log:\n{tail}"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("ws")
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text).lstrip("\n"))
    log = root / "serve.log"
    proc = subprocess.Popen([str(SERVE), "--no-services", "--root", str(root), "--port", "0", "--max-jobs", "2",
                             "--verbose"], stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    found: dict[str, str] = {}
    deadline = time.monotonic() + 60
    while "WM_ADMIN_TOKEN" not in found:
        line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        for word in line.split():
            if "=" in word and word.startswith("WM_"):
                key, value = word.split("=", 1)
                found[key] = value
    s = Server(proc, found["WM_BASE_URL"], found["WM_ADMIN_TOKEN"], log)
    yield s
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def trigger(server: Server, *args: str, token: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WM_")}
    env |= {"WM_BASE_URL": server.url, "WM_WORKSPACE": "local", **({"WM_TOKEN": token} if token else {})}
    return subprocess.run([str(TRIGGER), *args], env=env, capture_output=True, text=True, timeout=120)


def test_trigger_follows_a_flow_with_a_token_scoped_to_it(server):
    token = server.mint("jobs:run:flows:f/matter/count")
    done = trigger(server, "f/matter/count", "-d", '{"n": 3}', token=token)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"i": 99, "store": "secret-store"}
    assert "running step 2/3 each: " in done.stderr and "/3 done" in done.stderr
    assert "running step 3/3 last" in done.stderr and "succeeded" in done.stderr
    sync = trigger(server, "f/matter/count", "-d", '{"n": 1, "pause": 0}', "--sync", token=token)
    assert sync.returncode == 0 and json.loads(sync.stdout)["i"] == 99, sync.stderr


def test_progress_set_by_steps_reaches_the_callers_job_view(server):
    job_id = server.start("f/matter/slow", {})
    job = server.until(job_id, lambda j: (j.get("flow_status") or {}).get("modules", [{}])[0].get("progress"))
    assert job["flow_status"]["modules"][0] == {"id": "wait", "type": "InProgress", "job": job["flow_status"]["modules"][0]["job"],
                                               "progress": job["flow_status"]["modules"][0]["progress"]}
    assert job["flow_status"]["modules"][0]["progress"] in (25, 50, 75)
    server.cancel(job_id)
    assert server.until(job_id, lambda j: j["type"] == "CompletedJob")["canceled"]  # its queue slot is free again


def test_refusals(server):
    none = trigger(server, "f/matter/count", "-d", '{"n": 1}', token=None)
    assert none.returncode == 2 and "WM_TOKEN" in none.stderr
    bad = trigger(server, "f/matter/count", "-d", '{"n": 1}', token="not-a-token")
    assert bad.returncode == 2 and "HTTP 401" in bad.stderr
    other = server.mint("jobs:run:flows:f/matter/other")
    wrong = trigger(server, "f/matter/count", "-d", '{"n": 1}', token=other)
    assert wrong.returncode == 2 and "HTTP 403" in wrong.stderr
    assert "Required scope: jobs:run:flows:f/matter/count" in wrong.stderr
    script = trigger(server, "f/t/items", "--script", "-d", '{"n": 1}', token=other)
    assert script.returncode == 2 and "HTTP 403" in script.stderr and "jobs:run:scripts" in script.stderr
    missing = trigger(server, "f/matter/count", token=server.admin)
    assert missing.returncode == 2 and "HTTP 400" in missing.stderr and "missing required input(s): n" in missing.stderr
    unknown = trigger(server, "f/matter/nope", token=server.admin)
    assert unknown.returncode == 2 and "HTTP 404" in unknown.stderr


def test_a_run_token_reads_only_runs_of_its_flow_and_nothing_else(server):
    token = server.mint("jobs:run:flows:f/matter/count")
    mine = server.start("f/matter/count", {"n": 1, "pause": 0}, token)
    assert server.job(mine, token)["script_path"] == "f/matter/count"
    theirs = server.start("f/matter/other", {})
    for path in (f"jobs_u/get/{theirs}", f"jobs_u/completed/get_result_maybe/{theirs}",
                 f"jobs_u/completed/get_result/{theirs}", "resources/get_value_interpolated/f/t/store",
                 "resources/get/f/t/store", "variables/get_value/f/t/secret", "jobs/list"):
        r = server.call("GET", f"/api/w/local/{path}", token)
        assert r.status_code == 403, (path, r.status_code, r.text)
    assert server.call("GET", f"/api/w/local/jobs_u/get/{theirs}", None).status_code == 401
    assert server.call("POST", f"/api/w/local/jobs_u/queue/cancel/{mine}", token, json={}).status_code == 403
    broader = server.call("POST", "/api/users/tokens/create", token, json={"label": "x", "scopes": ["jobs:run"]})
    assert broader.status_code == 403
    assert server.call("GET", "/api/w/local/resources/get_value_interpolated/f/t/store", server.admin).json() == {"name": "secret-store"}
    for job_id in (mine, theirs):  # no job of this test holds a queue slot into the next one
        server.until(job_id, lambda j: j["type"] == "CompletedJob")


def test_a_failed_flow_names_its_step(server):
    token = server.mint("jobs:run:flows:f/matter/fails")
    done = trigger(server, "f/matter/fails", token=token)
    assert done.returncode == 1
    assert "failed: step 'boom': RuntimeError: boom" in done.stderr
    assert json.loads(done.stdout)["error"]["name"] == "RuntimeError"
    sync = trigger(server, "f/matter/fails", "--sync", token=token)  # run_wait_result answers 422
    assert sync.returncode == 1 and json.loads(sync.stdout)["error"]["step_id"] == "boom"


@pytest.mark.parametrize("can_cancel", [True, False])
def test_ctrl_c_cancels_when_the_token_may(server, can_cancel):
    scopes = ["jobs:run:flows:f/matter/slow"] + (["jobs:write"] if can_cancel else [])
    env = {k: v for k, v in os.environ.items() if not k.startswith("WM_")}
    env |= {"WM_BASE_URL": server.url, "WM_WORKSPACE": "local", "WM_TOKEN": server.mint(*scopes)}
    # started with SIGINT ignored, as `cmd &` in a non-interactive shell (CI, nohup) starts it: Ctrl-C must still cancel
    proc = subprocess.Popen([str(TRIGGER), "f/matter/slow"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    job_id = ""
    for line in proc.stderr:  # type: ignore[union-attr]
        if "as job " in line:
            job_id = line.split("as job ")[1].strip()
        if "running step" in line:
            break
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()  # not left running into the next test
        raise AssertionError(f"trigger did not stop on Ctrl-C (job {job_id})\n{server.diagnosis()}") from None
    assert proc.returncode == 130
    if can_cancel:
        assert f"canceled job {job_id}" in err
        job = server.until(job_id, lambda j: j["type"] == "CompletedJob")
        assert job["canceled"] and job["success"] is False
    else:
        assert "could not cancel" in err and "HTTP 403" in err
        assert server.job(job_id)["running"]
        server.cancel(job_id)
        server.until(job_id, lambda j: j["type"] == "CompletedJob")


def test_the_queue_runs_at_most_max_jobs_at_once(server):
    ids = [server.start("f/matter/slow", {}) for _ in range(3)]
    server.until(ids[1], lambda j: j["running"])
    states = [server.job(i) for i in ids]
    assert [s["running"] for s in states] == [True, True, False]
    assert states[2]["type"] == "QueuedJob"
    server.cancel(ids[0])
    server.until(ids[2], lambda j: j["running"])  # a slot freed: the queued job starts
    for i in ids:
        server.cancel(i)
    for i in ids:
        assert server.until(i, lambda j: j["type"] == "CompletedJob")["canceled"]


def test_http_route_trigger(server):
    url = "/api/r/local/count"
    assert server.call("POST", url, None, json={"n": 1}).status_code == 401
    # Windmill auth on a route checks who the token belongs to, not its scopes (get_http_route_trigger)
    unrelated = server.mint("jobs:run:flows:f/matter/other")
    r = server.call("POST", url, unrelated, json={"n": 2, "pause": 0})
    assert r.status_code == 201, r.text
    job = server.until(r.text, lambda j: j["type"] == "CompletedJob")
    assert job["success"] and job["result"]["i"] == 99
    assert server.call("GET", "/api/r/local/count", unrelated).status_code == 404  # method must match
