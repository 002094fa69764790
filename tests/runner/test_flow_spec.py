"""Flow YAML the runner cannot honour fails before anything runs, naming the key and the module."""

import pytest

from embedded.runner import InvalidRun, run_flow

FIRST_STEP_WRITES = """
- id: first
  value:
    type: rawscript
    language: python3
    content: "def main(marker: str):\\n    open(marker, 'w').write('ran')\\n"
    input_transforms: {marker: {type: javascript, expr: flow_input.marker}}
"""


def flow(second_step: str) -> str:
    steps = FIRST_STEP_WRITES + second_step
    return "summary: s\nvalue:\n  modules:\n" + "".join(f"    {line}\n" for line in steps.strip("\n").splitlines())


@pytest.mark.parametrize(
    ("second_step", "message"),
    [
        ("- {id: wait, suspend: {required_events: 1}, value: {type: identity}}", "module 'wait': suspend is supported on script steps only"),
        ("- {id: cached, cache_ttl: 60, value: {type: identity}}", "module 'cached': unsupported key 'cache_ttl'"),
        ("- {id: fake, mock: {enabled: true, return_value: 1}, value: {type: identity}}", "module 'fake': unsupported key 'mock'"),
        ("- {id: agent, value: {type: aiagent, tools: []}}", "module 'agent': unsupported type 'aiagent'"),
        ("- {id: ts, value: {type: rawscript, language: bun, content: x}}", "module 'ts': unsupported language 'bun'"),
        ("- {id: lim, value: {type: rawscript, language: python3, content: x, concurrent_limit: 2}}",
         "module 'lim': unsupported key 'concurrent_limit' in value"),
        ("- {id: squash, value: {type: forloopflow, iterator: {type: static, value: []}, squash: true, modules: []}}",
         "module 'squash': unsupported key 'squash'"),
        ("- {id: gone, value: {type: script, path: f/t/missing}}", "script not found: f/t/missing"),
        ("- {id: gone, value: {type: flow, path: f/matter/missing}}", "flow not found: f/matter/missing"),
        ("- {id: inl, value: {type: rawscript, language: python3, content: '!inline nope.py'}}", "inline file not found"),
        ("- {id: first, value: {type: identity}}", "duplicate module id(s): first"),
        ("- {id: r, retry: {exponential: {attempts: 2, seconds: 0}}, value: {type: identity}}", "seconds >= 1"),
    ],
)
async def test_unsupported_or_broken_flows_fail_loudly(put, ws, tmp_path, second_step, message):
    put({"flows/bad/flow.yaml": flow(second_step)})
    marker = tmp_path / "marker"
    with pytest.raises(InvalidRun) as err:
        await run_flow(ws, "f/matter/bad", {"marker": str(marker)})
    assert message in str(err.value)
    assert not marker.exists()


async def test_unsupported_flow_level_keys(put, ws):
    put({"flows/bad/flow.yaml": "summary: s\nvalue:\n  modules: []\n  early_return: 'true'\n  same_worker: true\n"})
    with pytest.raises(InvalidRun) as err:
        await run_flow(ws, "f/matter/bad", {})
    assert "flow: unsupported key 'early_return'" in str(err.value)
    assert "flow: unsupported key 'same_worker'" in str(err.value)


async def test_flows_live_in_the_flow_folder(put, ws):
    with pytest.raises(InvalidRun, match="must be f/matter/<name>"):
        await run_flow(ws, "f/other/x", {})
    with pytest.raises(InvalidRun, match="flow not found"):
        await run_flow(ws, "f/matter/absent", {})
    put({"flows/selfish/flow.yaml": "summary: s\nvalue:\n  modules:\n    - {id: me, value: {type: flow, path: f/matter/selfish}}\n"})
    with pytest.raises(InvalidRun, match="calls itself"):
        await run_flow(ws, "f/matter/selfish", {})


async def test_an_empty_flow_returns_its_input(put, ws):
    put({"flows/empty/flow.yaml": "summary: s\nvalue:\n  modules: []\n"})
    assert await run_flow(ws, "f/matter/empty", {"a": 1}) == {"a": 1}
