"""Approval steps in the local runner: a `suspend` step waits for its resume URL (scripts/wm job approve) or its
cancel URL (reject), the next step reads `resume`, a rejection runs the failure module, a timeout fails."""

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from embedded.runner import FlowFailed, Workspace, run_flow

WM = Path(__file__).resolve().parents[2] / "scripts" / "wm"

FLOW = """
summary: approval
value:
  modules:
    - id: ask
      suspend:
        required_events: 1
        timeout: {timeout}
        continue_on_disapprove_timeout: {go_on}
        resume_form: {{schema: {{type: object, properties: {{note: {{type: string}}}}}}}}
      value:
        type: rawscript
        language: python3
        content: |
          import wmill
          def main(x: int):
              urls = wmill.get_resume_urls()
              return {{"x": x, "resume": urls["resume"], "cancel": urls["cancel"]}}
        input_transforms: {{x: {{type: javascript, expr: flow_input.x}}}}
    - id: after
      value:
        type: rawscript
        language: python3
        content: |
          def main(asked: dict, payload, who: list):
              return {{"asked": asked["x"], "payload": payload, "who": who}}
        input_transforms:
          asked: {{type: javascript, expr: results.ask}}
          payload: {{type: javascript, expr: resume}}
          who: {{type: javascript, expr: approvers}}
  failure_module:
    id: failure
    value:
      type: rawscript
      language: python3
      content: |
          def main(message: str, step: str):
              return {{"failure": message, "step": step}}
      input_transforms:
        message: {{type: javascript, expr: error.message}}
        step: {{type: javascript, expr: error.step_id}}
schema: {{properties: {{x: {{type: integer}}}}, required: [x]}}
"""


def write_flow(root: Path, timeout: int = 60, go_on: bool = False) -> None:
    file = root / "flows" / "approve" / "flow.yaml"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(textwrap.dedent(FLOW.format(timeout=timeout, go_on=str(go_on).lower())).lstrip())


def wm(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(WM), *args, "--root", str(root)], capture_output=True, text=True, timeout=60)


def waiting(root: Path, deadline_s: float = 60) -> dict:
    """The approval step the flow waits at, once `scripts/wm job approvals` lists it."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        listed = json.loads(wm(root, "job", "approvals").stdout)
        if listed:
            return listed[0]
        time.sleep(0.3)
    raise AssertionError("the flow never reached its approval step")


def start(root: Path, x: int) -> subprocess.Popen[str]:
    return subprocess.Popen([str(WM), "flow", "run", "f/matter/approve", "-d", json.dumps({"x": x}), "--root",
                             str(root), "--no-services"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc.returncode, out, err


def test_approve_through_scripts_wm_resumes_with_the_payload(tmp_path):
    write_flow(tmp_path)
    proc = start(tmp_path, 7)
    step = waiting(tmp_path)
    assert step["step"] == "ask" and step["request"]["x"] == 7 and "/jobs_u/resume/" in step["request"]["resume"]
    done = wm(tmp_path, "job", "approve", step["root_job"], "-d", '{"note": "looks right"}', "--approver", "ana")
    assert done.returncode == 0, done.stderr
    code, out, err = finish(proc)
    assert code == 0, err
    assert json.loads(out) == {"asked": 7, "payload": {"note": "looks right", "approver": "ana"}, "who": ["anonymous"]}
    assert "suspend" in err and "approved by" in err
    assert json.loads(wm(tmp_path, "job", "approvals").stdout) == []  # nothing left waiting


def test_reject_fails_the_flow_at_the_approval_step_and_runs_the_failure_module(tmp_path):
    write_flow(tmp_path)
    proc = start(tmp_path, 1)
    step = waiting(tmp_path)
    done = wm(tmp_path, "job", "reject", step["job"], "-d", '{"reason": "wrong client"}')
    assert done.returncode == 0, done.stderr
    code, _, err = finish(proc)
    assert code == 1
    assert "failed at step 'ask': SuspendedDisapproved: Disapproved by unknown: wrong client" in err
    assert '"step": "ask"' in err  # the failure module ran and saw the approval step


def test_unknown_job_and_forged_urls_are_refused(tmp_path):
    write_flow(tmp_path)
    assert "no flow waiting" in wm(tmp_path, "job", "approve", "nope").stderr
    proc = start(tmp_path, 2)
    step = waiting(tmp_path)
    import httpx

    forged = step["request"]["resume"].rsplit("/", 1)[0] + "/" + "0" * 64
    assert httpx.post(forged, json={}).status_code == 401
    assert wm(tmp_path, "job", "approve", step["job"]).returncode == 0
    assert finish(proc)[0] == 0


async def test_timeout_fails_or_continues_with_an_error_payload(tmp_path):
    write_flow(tmp_path, timeout=1)
    ws = Workspace(tmp_path)
    with pytest.raises(FlowFailed) as failed:
        await run_flow(ws, "f/matter/approve", {"x": 3})
    assert failed.value.error["name"] == "SuspendedTimedOut" and failed.value.step_id == "ask"
    write_flow(tmp_path, timeout=1, go_on=True)
    result = await run_flow(ws, "f/matter/approve", {"x": 3})
    assert result["payload"] == {"error": {"name": "SuspendedTimedOut", "message": "Timed out waiting to be resumed"}}
