"""branchone picks the first true branch (or default); branchall runs every branch."""

import pytest

from embedded.runner import FlowFailed, run_flow

TAG = "def main(tag: str, prev):\n    return {'tag': tag, 'prev': prev}\n"


def step(id: str, tag: str) -> str:
    return (
        f"{{id: {id}, value: {{type: rawscript, language: python3, content: '!inline tag.py', input_transforms: "
        f"{{tag: {{type: static, value: {tag}}}, prev: {{type: javascript, expr: previous_result}}}}}}}}"
    )


async def test_branchone_takes_the_first_true_branch_or_default(put, ws):
    put({
        "flows/pick/tag.py": TAG,
        "flows/pick/flow.yaml": f"""
            summary: pick
            value:
              modules:
                - id: size
                  value:
                    type: branchone
                    branches:
                      - summary: big
                        expr: flow_input.n > 100
                        modules: [{step("big", "big")}]
                      - summary: positive
                        expr: flow_input.n > 0
                        modules: [{step("pos", "positive")}, {step("pos2", "positive-2")}]
                    default: [{step("other", "default")}]
                - id: after
                  value: {{type: rawscript, language: python3, content: '!inline tag.py',
                          input_transforms: {{tag: {{type: javascript, expr: results.size.tag}}, prev: {{type: static}}}}}}
        """,
    })
    assert await run_flow(ws, "f/matter/pick", {"n": 500}) == {"tag": "big", "prev": None}
    assert await run_flow(ws, "f/matter/pick", {"n": -1}) == {"tag": "default", "prev": None}
    # the branch's last step is the branch's result; a branch starts from the flow input
    put({"flows/pick/flow.yaml": f"""
        summary: pick
        value:
          modules:
            - id: size
              value:
                type: branchone
                branches:
                  - {{expr: flow_input.n > 0, modules: [{step("pos", "positive")}, {step("pos2", "positive-2")}]}}
                default: []
    """})
    assert await run_flow(ws, "f/matter/pick", {"n": 5}) == {"tag": "positive-2", "prev": {"tag": "positive", "prev": {"n": 5}}}
    assert await run_flow(ws, "f/matter/pick", {"n": -5}) == {"n": -5}  # empty default: previous result


@pytest.mark.parametrize("parallel", ["true", "false"])
async def test_branchall_runs_every_branch_and_skips_allowed_failures(put, ws, parallel):
    put({
        "flows/all/tag.py": TAG,
        "flows/all/flow.yaml": f"""
            summary: all
            value:
              modules:
                - id: fan
                  value:
                    type: branchall
                    parallel: {parallel}
                    branches:
                      - modules: [{step("a", "a")}]
                      - skip_failure: true
                        modules:
                          - {{id: oops, value: {{type: rawscript, language: python3, content: "def main():\\n    raise KeyError('k')\\n"}}}}
                      - modules: [{step("c", "c")}]
        """,
    })
    result = await run_flow(ws, "f/matter/all", {"n": 1})
    assert result[0] == {"tag": "a", "prev": {"n": 1}}
    assert result[1]["error"]["name"] == "KeyError" and result[1]["error"]["step_id"] == "oops"
    assert result[2] == {"tag": "c", "prev": {"n": 1}}


async def test_branchall_fails_on_a_branch_without_skip_failure(put, ws):
    put({
        "flows/all/flow.yaml": """
            summary: all
            value:
              modules:
                - id: fan
                  value:
                    type: branchall
                    branches:
                      - modules: [{id: fine, value: {type: identity}}]
                      - modules:
                          - {id: oops, value: {type: rawscript, language: python3, content: "def main():\\n    raise KeyError('k')\\n"}}
        """,
    })
    with pytest.raises(FlowFailed) as failed:
        await run_flow(ws, "f/matter/all", {})
    assert failed.value.step_id == "oops"
