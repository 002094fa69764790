"""Steps in sequence: results passing, input transforms, defaults, subflows and step options."""

import os

import pytest

from embedded.runner import FlowFailed, InvalidRun, JobFailed, Workspace, run_flow, run_script

ADD = """
def main(a: int, b: int = 10):
    print(f"adding {a} and {b}")
    return a + b
"""


async def test_results_pass_from_step_to_step(put, ws):
    put({
        "f/t/add.py": ADD,
        "flows/chain/describe.py": """
            def main(total: int, first: dict, everything: dict, label: str = "x"):
                return {"total": total, "first": first, "everything": everything, "label": label}
        """,
        "flows/chain/flow.yaml": """
            summary: chain
            value:
              modules:
                - id: one
                  value:
                    type: script
                    path: f/t/add
                    input_transforms:
                      a: {type: javascript, expr: flow_input.start}
                - id: two
                  value:
                    type: script
                    path: f/t/add
                    input_transforms:
                      a: {type: javascript, expr: previous_result}
                      b: {type: javascript, expr: results.one * 2}
                - id: three
                  value:
                    type: rawscript
                    language: python3
                    content: '!inline describe.py'
                    input_transforms:
                      total: {type: javascript, expr: results.two}
                      first: {type: javascript, expr: "({one: results.one})"}
                      everything: {type: javascript, expr: "const r = results[flow_input.pick]; return {picked: r, input: flow_input}"}
            schema:
              properties:
                start: {type: integer}
                pick: {type: string, default: one}
              required: [start]
        """,
    })
    result = await run_flow(ws, "f/matter/chain", {"start": 1})
    # one = 1 + 10 = 11; two = 11 + 22 = 33
    assert result == {
        "total": 33,
        "first": {"one": 11},
        "everything": {"picked": 11, "input": {"start": 1, "pick": "one"}},
        "label": "x",
    }


async def test_first_step_gets_the_flow_input_as_previous_result(put, ws):
    put({
        "flows/first/echo.py": "def main(x):\n    return x\n",
        "flows/first/flow.yaml": """
            summary: first
            value:
              modules:
                - id: echo
                  value: {type: rawscript, language: python3, content: '!inline echo.py',
                          input_transforms: {x: {type: javascript, expr: previous_result}}}
        """,
    })
    assert await run_flow(ws, "f/matter/first", {"a": 1}) == {"a": 1}


async def test_res_and_var_arguments_resolve_in_jobs(put, tmp_path):
    put({
        "f/t/show.py": "def main(store: dict, key: str, computed: dict):\n    return [store, key, computed]\n",
        "resources/dev/f/t/store.resource.yaml": """
            value: {conn: "$var:f/t/conn", nested: {key: "$var:f/t/key"}, plain: 1}
            resource_type: blob
        """,
        "resources/dev/f/t/key.variable.yaml": "value: from-file\nis_secret: true\n",
        "flows/res/flow.yaml": """
            summary: res
            value:
              modules:
                - id: show
                  value:
                    type: script
                    path: f/t/show
                    input_transforms:
                      store: {type: javascript, expr: flow_input.store}
                      key: {type: static, value: "$var:f/t/key"}
                      computed: {type: javascript, expr: "({inner: '$res:f/t/store', n: resource('f/t/store').plain})"}
            schema:
              properties:
                store: {type: object, format: resource-blob, default: "$res:f/t/store"}
        """,
    })
    ws = Workspace(tmp_path, env="dev", variables={"f/t/conn": "live-conn"})
    store = {"conn": "live-conn", "nested": {"key": "from-file"}, "plain": 1}
    assert await run_flow(ws, "f/matter/res", {}) == [store, "from-file", {"inner": store, "n": 1}]


async def test_missing_required_input_fails_before_running(put, ws, tmp_path):
    put({
        "f/t/add.py": ADD,
        "flows/req/flow.yaml": """
            summary: req
            value:
              modules:
                - id: one
                  value: {type: script, path: f/t/add, input_transforms: {a: {type: javascript, expr: flow_input.n}}}
            schema:
              properties: {n: {type: integer}, m: {type: integer}}
              required: [n, m]
        """,
    })
    with pytest.raises(InvalidRun, match="missing required input.*n, m"):
        await run_flow(ws, "f/matter/req", {})
    assert not (tmp_path / ".state").exists()


async def test_subflow_gets_its_inputs_and_defaults(put, ws):
    put({
        "f/t/add.py": ADD,
        "flows/child/flow.yaml": """
            summary: child
            value:
              modules:
                - id: sum
                  value:
                    type: script
                    path: f/t/add
                    input_transforms:
                      a: {type: javascript, expr: flow_input.a}
                      b: {type: javascript, expr: flow_input.b}
            schema:
              properties: {a: {type: integer}, b: {type: integer, default: 100}}
              required: [a]
        """,
        "flows/parent/flow.yaml": """
            summary: parent
            value:
              modules:
                - id: call
                  value:
                    type: flow
                    path: f/matter/child
                    input_transforms:
                      a: {type: javascript, expr: flow_input.x + 1}
                - id: again
                  value:
                    type: flow
                    path: f/matter/child
                    input_transforms:
                      a: {type: javascript, expr: results.call}
                      b: {type: static, value: 1}
        """,
    })
    assert await run_flow(ws, "f/matter/parent", {"x": 1}) == 103  # (1+1+100) + 1


async def test_skip_if_passes_the_previous_result_through(put, ws, tmp_path):
    put({
        "f/t/add.py": ADD,
        "flows/skip/flow.yaml": """
            summary: skip
            value:
              modules:
                - id: one
                  value: {type: script, path: f/t/add, input_transforms: {a: {type: static, value: 1}}}
                - id: maybe
                  skip_if: {expr: "flow_input.skip && results.one === 11"}
                  value: {type: script, path: f/t/add, input_transforms: {a: {type: javascript, expr: previous_result}}}
                - id: same
                  value: {type: identity}
        """,
    })
    assert await run_flow(ws, "f/matter/skip", {"skip": True}) == 11
    assert await run_flow(ws, "f/matter/skip", {"skip": False}) == 21


async def test_stop_after_if_ends_the_flow_or_fails_it(put, ws):
    put({
        "f/t/add.py": ADD,
        "flows/stop/flow.yaml": """
            summary: stop
            value:
              modules:
                - id: one
                  stop_after_if: {expr: "result > flow_input.limit", skip_if_stopped: false}
                  value: {type: script, path: f/t/add, input_transforms: {a: {type: static, value: 1}}}
                - id: two
                  stop_after_if: {expr: "result > 0", error_message: "too big", skip_if_stopped: false}
                  value: {type: script, path: f/t/add, input_transforms: {a: {type: javascript, expr: previous_result}}}
        """,
    })
    assert await run_flow(ws, "f/matter/stop", {"limit": 5}) == 11
    with pytest.raises(FlowFailed) as failed:
        await run_flow(ws, "f/matter/stop", {"limit": 50})
    assert failed.value.step_id == "two"
    assert failed.value.error == {"name": "EarlyStopError", "message": "too big", "step_id": "two"}


async def test_continue_on_error_makes_the_error_the_result(put, ws):
    put({
        "f/t/boom.py": "def main():\n    raise ValueError('boom')\n",
        "flows/cont/flow.yaml": """
            summary: cont
            value:
              modules:
                - id: bad
                  continue_on_error: true
                  value: {type: script, path: f/t/boom}
                - id: after
                  value: {type: identity}
        """,
    })
    result = await run_flow(ws, "f/matter/cont", {})
    assert result["error"]["name"] == "ValueError"
    assert result["error"]["message"] == "boom"
    assert result["error"]["step_id"] == "bad"
    assert "raise ValueError('boom')" in result["error"]["stack"]


async def test_sleep_delays_the_next_step(put, ws):
    put({
        "f/t/now.py": "import time\ndef main():\n    return time.time()\n",
        "flows/nap/flow.yaml": """
            summary: nap
            value:
              modules:
                - id: before
                  sleep: {type: javascript, expr: "flow_input.seconds"}
                  value: {type: script, path: f/t/now}
                - id: after
                  value: {type: script, path: f/t/now}
                - id: both
                  value: {type: rawscript, language: python3,
                          content: "def main(a: float, b: float):\\n    return b - a\\n",
                          input_transforms: {a: {type: javascript, expr: results.before},
                                             b: {type: javascript, expr: results.after}}}
        """,
    })
    assert await run_flow(ws, "f/matter/nap", {"seconds": 1.5}) >= 1.5


async def test_async_main_and_unserialisable_results(put, ws):
    put({
        "f/t/aio.py": "import asyncio\nasync def main(n: int):\n    await asyncio.sleep(0)\n    return n * 3\n",
        "f/t/obj.py": "def main():\n    return object()\n",
        "f/t/nan.py": "def main():\n    return float('nan')\n",
    })
    assert await run_script(ws, "f/t/aio", {"n": 2}) == 6
    for path in ("f/t/obj", "f/t/nan"):
        with pytest.raises(JobFailed) as failed:
            await run_script(ws, path, {})
        assert failed.value.error["name"] == "ResultNotSerializable"


async def test_run_script_checks_required_arguments(put, ws):
    put({"f/t/add.py": ADD})
    with pytest.raises(InvalidRun, match="missing required argument.*a"):
        await run_script(ws, "f/t/add", {"b": 1})
    assert await run_script(ws, "f/t/add", {"a": 1, "b": None}) == 11  # None takes the default, like Windmill


async def test_each_step_is_a_fresh_process_with_the_job_environment(put, ws, tmp_path):
    put({
        "f/t/env.py": """
            import os
            def main():
                keys = ["WM_JOB_ID", "WM_FLOW_JOB_ID", "WM_ROOT_FLOW_JOB_ID", "WM_FLOW_STEP_ID",
                        "WM_JOB_PATH", "WM_WORKSPACE", "WM_STATE_PATH_NEW"]
                return {"pid": os.getpid(), **{k: os.environ.get(k) for k in keys}}
        """,
        "flows/env/flow.yaml": """
            summary: env
            value:
              modules:
                - {id: a, value: {type: script, path: f/t/env}}
                - {id: b, value: {type: script, path: f/t/env}}
                - id: both
                  value:
                    type: rawscript
                    language: python3
                    content: "def main(a, b):\\n    return [a, b]\\n"
                    input_transforms: {a: {type: javascript, expr: results.a}, b: {type: javascript, expr: results.b}}
        """,
    })
    a, b = await run_flow(ws, "f/matter/env", {}, verbose=True)
    assert len({a["pid"], b["pid"], os.getpid()}) == 3
    assert (a["WM_FLOW_STEP_ID"], b["WM_FLOW_STEP_ID"]) == ("a", "b")
    assert b["WM_JOB_PATH"] == "f/t/env" and b["WM_WORKSPACE"] == "local"
    assert a["WM_FLOW_JOB_ID"] == b["WM_ROOT_FLOW_JOB_ID"] != b["WM_JOB_ID"] != a["WM_JOB_ID"]
    assert b["WM_STATE_PATH_NEW"] == "f/matter/env/b"
    runs = tmp_path / ".state" / "runs" / b["WM_ROOT_FLOW_JOB_ID"]
    assert len(list(runs.glob("*.log"))) == 3
    assert (runs / b["WM_JOB_ID"] / "result.json").is_file()


async def test_results_over_16_kb_are_flagged(put, ws, capsys):
    put({"f/t/big.py": "def main(n: int):\n    return 'x' * n\n"})
    await run_script(ws, "f/t/big", {"n": 100})
    assert "WARN" not in capsys.readouterr().err
    await run_script(ws, "f/t/big", {"n": 20_000})
    assert "result is 19.5 KB, over the 16.0 KB limit" in capsys.readouterr().err
