"""Retries, timeouts and the failure module."""

import os
import time

import pytest

from embedded.runner import FlowFailed, run_flow
from embedded.runner.spec import Constant, Exponential, Retry

# Fails until it has been called `succeed_on` times, counting calls in a file.
FLAKY = """
from pathlib import Path
def main(counter: str, succeed_on: int):
    path = Path(counter)
    calls = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(calls))
    if calls < succeed_on:
        raise RuntimeError(f"call {calls} fails")
    return calls
"""

RETRY_FLOW = """
summary: flaky
value:
  modules:
    - id: flaky
      retry: {retry}
      value:
        type: script
        path: f/t/flaky
        input_transforms:
          counter: {{type: javascript, expr: flow_input.counter}}
          succeed_on: {{type: javascript, expr: flow_input.succeed_on}}
"""


def test_retry_delays_follow_windmill():
    retry = Retry(constant=Constant(attempts=2, seconds=3), exponential=Exponential(attempts=2, multiplier=2, seconds=3))
    assert [retry.delay(n) for n in range(5)] == [3, 3, 2 * 3**3, 2 * 3**4, None]


async def test_retry_until_success(put, ws, tmp_path):
    put({"f/t/flaky.py": FLAKY, "flows/flaky/flow.yaml": RETRY_FLOW.format(retry="{constant: {attempts: 3, seconds: 0}}")})
    counter = tmp_path / "calls"
    assert await run_flow(ws, "f/matter/flaky", {"counter": str(counter), "succeed_on": 3}) == 3
    assert counter.read_text() == "3"


async def test_retry_gives_up_after_its_attempts(put, ws, tmp_path):
    put({"f/t/flaky.py": FLAKY,
         "flows/flaky/flow.yaml": RETRY_FLOW.format(retry="{exponential: {attempts: 1, multiplier: 1, seconds: 1}}")})
    counter = tmp_path / "calls"
    t0 = time.monotonic()
    with pytest.raises(FlowFailed, match="call 2 fails"):
        await run_flow(ws, "f/matter/flaky", {"counter": str(counter), "succeed_on": 5})
    assert counter.read_text() == "2"
    assert time.monotonic() - t0 >= 1  # 1 * 1^1 seconds between the attempts


async def test_retry_if_false_does_not_retry(put, ws, tmp_path):
    retry = "{constant: {attempts: 3, seconds: 0}, retry_if: {expr: \"!result.error.message.includes('call 1')\"}}"
    put({"f/t/flaky.py": FLAKY, "flows/flaky/flow.yaml": RETRY_FLOW.format(retry=retry)})
    counter = tmp_path / "calls"
    with pytest.raises(FlowFailed):
        await run_flow(ws, "f/matter/flaky", {"counter": str(counter), "succeed_on": 3})
    assert counter.read_text() == "1"


async def test_timeout_kills_a_hanging_step(put, ws, tmp_path):
    put({
        "f/t/hang.py": """
            import os, subprocess, time
            def main(pids: str):
                child = subprocess.Popen(["sleep", "60"])
                with open(pids, "w") as f:
                    f.write(f"{os.getpid()} {child.pid}")
                time.sleep(60)
        """,
        "flows/hang/flow.yaml": """
            summary: hang
            value:
              modules:
                - id: stuck
                  timeout: 2
                  value: {type: script, path: f/t/hang, input_transforms: {pids: {type: javascript, expr: flow_input.pids}}}
        """,
    })
    pids = tmp_path / "pids"
    t0 = time.monotonic()
    with pytest.raises(FlowFailed) as failed:
        await run_flow(ws, "f/matter/hang", {"pids": str(pids)})
    assert time.monotonic() - t0 < 10
    assert failed.value.step_id == "stuck" and failed.value.error["name"] == "TimeoutError"
    job_pid, child_pid = map(int, pids.read_text().split())
    with pytest.raises(ProcessLookupError):
        os.kill(job_pid, 0)
    time.sleep(0.2)  # the orphaned child is reaped by init
    assert not _alive(child_pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


FAILING = """
summary: failing
value:
  modules:
    - id: first
      value: {type: identity}
    - id: rows
      value:
        type: forloopflow
        iterator: {type: static, value: [1, 2]}
        skip_failures: false
        modules:
          - id: bad
            value:
              type: rawscript
              language: python3
              content: "def main(n: int):\\n    raise ValueError(f'bad row {n}')\\n"
              input_transforms: {n: {type: javascript, expr: flow_input.iter.value}}
  failure_module:
    id: failure
    value:
      type: rawscript
      language: python3
      content: '!inline failure.py'
      input_transforms:
        message: {type: javascript, expr: error.message}
        name: {type: javascript, expr: error.name}
        step: {type: javascript, expr: error.step_id}
        x: {type: javascript, expr: flow_input.x}
        first: {type: javascript, expr: results.first}
"""


async def test_failure_module_gets_the_error_and_the_flow_still_fails(put, ws):
    put({
        "flows/failing/failure.py": "def main(message, name, step, x, first):\n    return {'seen': [message, name, step, x, first]}\n",
        "flows/failing/flow.yaml": FAILING,
    })
    with pytest.raises(FlowFailed) as failed:
        await run_flow(ws, "f/matter/failing", {"x": 7})
    assert failed.value.step_id == "bad"
    assert failed.value.error["message"] == "bad row 1"
    assert failed.value.result == {"seen": ["bad row 1", "ValueError", "bad", 7, {"x": 7}]}


async def test_failure_module_can_recover(put, ws):
    put({
        "flows/failing/failure.py": "def main(message, name, step, x, first):\n    return {'recover': True, 'why': message}\n",
        "flows/failing/flow.yaml": FAILING,
    })
    assert await run_flow(ws, "f/matter/failing", {"x": 7}) == {"recover": True, "why": "bad row 1"}
