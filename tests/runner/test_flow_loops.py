"""For-loops and while-loops: order, parallelism, the worker limit, failures and breaking out."""

import json
from pathlib import Path

import pytest

from embedded.runner import FlowFailed, run_flow

# Records when main() ran, so a test can count how many iterations overlapped.
SPAN = """
import json, os, time
def main(item: int, where: str):
    start = time.time()
    time.sleep(1.0)
    with open(os.path.join(where, f"{item}.json"), "w") as f:
        json.dump([start, time.time()], f)
    return item * 10
"""

LOOP = """
summary: loop
value:
  modules:
    - id: each
      value:
        type: forloopflow
        iterator: {{type: javascript, expr: flow_input.items}}
        parallel: {parallel}
        parallelism: {parallelism}
        skip_failures: {skip}
        modules:
          - id: work
            value:
              type: script
              path: {script}
              input_transforms:
                item: {{type: javascript, expr: flow_input.iter.value}}
                where: {{type: javascript, expr: flow_input.where}}
"""


def max_overlap(where: Path) -> int:
    spans = [json.loads(f.read_text()) for f in where.glob("*.json")]
    return max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)


@pytest.mark.parametrize(("parallelism", "workers", "expected"), [(2, 4, 2), (5, 3, 3), (1, 4, 1)])
async def test_parallel_loop_honours_parallelism_and_worker_limit(put, ws, tmp_path, parallelism, workers, expected):
    put({
        "f/t/span.py": SPAN,
        "flows/loop/flow.yaml": LOOP.format(parallel="true", parallelism=parallelism, skip="false", script="f/t/span"),
    })
    where = tmp_path / "spans"
    where.mkdir()
    result = await run_flow(ws, "f/matter/loop", {"items": [1, 2, 3, 4], "where": str(where)}, max_workers=workers)
    assert result == [10, 20, 30, 40]
    assert max_overlap(where) == expected


async def test_step_timeout_does_not_count_the_wait_for_a_worker(put, ws):
    put({
        "f/t/nap.py": "import time\ndef main(item: int, where: str):\n    time.sleep(0.8)\n    return item\n",
        "flows/loop/flow.yaml": LOOP.format(parallel="true", parallelism=3, skip="false", script="f/t/nap").replace(
            "          - id: work\n", "          - id: work\n            timeout: 1.5\n"
        ),
    })
    assert await run_flow(ws, "f/matter/loop", {"items": [1, 2, 3], "where": ""}, max_workers=1) == [1, 2, 3]


async def test_skip_failures_puts_the_error_in_the_failed_slot(put, ws, tmp_path):
    put({
        "f/t/inv.py": "def main(item: int, where: str):\n    return 10 // item\n",
        "flows/loop/flow.yaml": LOOP.format(parallel="true", parallelism=3, skip="true", script="f/t/inv"),
    })
    result = await run_flow(ws, "f/matter/loop", {"items": [1, 0, 5], "where": ""})
    assert result[0] == 10 and result[2] == 2
    error = result[1]["error"]
    assert (error["name"], error["message"], error["step_id"]) == ("ZeroDivisionError", "integer division or modulo by zero", "work")


@pytest.mark.parametrize("parallel", ["true", "false"])
async def test_a_failed_iteration_fails_the_flow_without_skip_failures(put, ws, parallel):
    put({
        "f/t/inv.py": "def main(item: int, where: str):\n    return 10 // item\n",
        "flows/loop/flow.yaml": LOOP.format(parallel=parallel, parallelism=2, skip="false", script="f/t/inv"),
    })
    with pytest.raises(FlowFailed) as failed:
        await run_flow(ws, "f/matter/loop", {"items": [1, 0, 5], "where": ""})
    assert failed.value.step_id == "work"
    assert failed.value.error["name"] == "ZeroDivisionError"


async def test_sequential_loop_breaks_on_stop_after_if_and_nests_iter(put, ws):
    put({
        "flows/nest/pair.py": "def main(outer, inner, index):\n    return [outer, inner, index]\n",
        "flows/nest/flow.yaml": """
            summary: nest
            value:
              modules:
                - id: rows
                  stop_after_if: {expr: "result.length == 2 && all_iters.length == 2", skip_if_stopped: false}
                  value:
                    type: forloopflow
                    iterator: {type: static, value: [a, b, c]}
                    skip_failures: false
                    modules:
                      - id: cols
                        value:
                          type: forloopflow
                          iterator: {type: javascript, expr: "[1, 2]"}
                          skip_failures: false
                          modules:
                            - id: pair
                              value:
                                type: rawscript
                                language: python3
                                content: '!inline pair.py'
                                input_transforms:
                                  outer: {type: javascript, expr: flow_input.iter_parent.value}
                                  inner: {type: javascript, expr: flow_input.iter.value}
                                  index: {type: javascript, expr: flow_input.iter.index}
                - id: after
                  value: {type: identity}
        """,
    })
    assert await run_flow(ws, "f/matter/nest", {}) == [
        [["a", 1, 0], ["a", 2, 1]],
        [["b", 1, 0], ["b", 2, 1]],
    ]


async def test_while_loop_runs_until_stop_after_if(put, ws):
    put({
        "flows/until/square.py": "def main(i: int):\n    return i * i\n",
        "flows/until/flow.yaml": """
            summary: until
            value:
              modules:
                - id: grow
                  stop_after_if: {expr: "result >= flow_input.limit", skip_if_stopped: false}
                  value:
                    type: whileloopflow
                    skip_failures: false
                    modules:
                      - id: square
                        value:
                          type: rawscript
                          language: python3
                          content: '!inline square.py'
                          input_transforms: {i: {type: javascript, expr: flow_input.iter.value}}
        """,
    })
    assert await run_flow(ws, "f/matter/until", {"limit": 10}) == [0, 1, 4, 9, 16]


async def test_empty_and_non_array_iterators(put, ws):
    put({
        "f/t/span.py": SPAN,
        "flows/loop/flow.yaml": LOOP.format(parallel="true", parallelism=2, skip="false", script="f/t/span"),
    })
    assert await run_flow(ws, "f/matter/loop", {"items": [], "where": ""}) == []
    with pytest.raises(FlowFailed, match="iterator must be an array"):
        await run_flow(ws, "f/matter/loop", {"items": {"a": 1}, "where": ""})
