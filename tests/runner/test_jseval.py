"""InputTransform expressions in V8, with Windmill's wrapping rules."""

import asyncio

import pytest

from embedded.jseval import ExprError, JsEval

SCOPE = {
    "flow_input": {"n": 2, "iter": {"value": "v", "index": 3}},
    "results": {"split": {"batches": [[1], [2, 3]]}},
    "previous_result": {"error": {"message": "boom", "step_id": "x"}},
}


async def lookup(kind: str, path: str):
    if path == "f/t/missing":
        raise LookupError("not here")
    return {"kind": kind, "path": path} if kind == "resource" else f"value of {path}"


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("flow_input.n * 21", 42),
        ("results.split.batches.flat()", [1, 2, 3]),
        ("flow_input.iter", {"value": "v", "index": 3}),
        ("error.message", "boom"),
        ("`${flow_input.iter.value}-${flow_input.iter.index}`", "v-3"),
        ("const xs = [1, 2, 3];\nreturn xs.map(x => x * flow_input.n)", [2, 4, 6]),
        ("undefined", None),
        ("({a: undefined, b: null})", {"b": None}),
        ("resource('f/t/store').path", "f/t/store"),
        ("variable(`f/t/${'key'}`)", "value of f/t/key"),
        ("await resource('f/t/x')", {"kind": "resource", "path": "f/t/x"}),
    ],
)
async def test_expressions(expr, value):
    async with JsEval(lookup) as js:
        assert await js.eval(expr, SCOPE) == value


async def test_truthiness_is_javascripts():
    async with JsEval(lookup) as js:
        assert [await js.test(e, SCOPE) for e in ("[]", "{}", "0", "''", "null", "flow_input.n > 1")] == [
            True, True, False, False, False, True,
        ]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("nope.x", "ReferenceError: nope is not defined"),
        ("(", "SyntaxError"),
        ("resource('f/t/missing')", "not here"),
        ("() => 1", "JSON cannot hold"),
        ("(() => { while (true) {} })()", "took longer than"),
    ],
)
async def test_errors(expr, message):
    async with JsEval(lookup, timeout=1) as js:
        with pytest.raises(ExprError, match=message):
            await js.eval(expr, SCOPE)
        assert await js.eval("1 + 1", {}) == 2  # the context survives


async def test_concurrent_evaluations_share_one_context():
    async with JsEval(lookup) as js:
        paths = await asyncio.gather(*(js.eval("resource(flow_input.p).path", {"flow_input": {"p": f"f/t/{i}"}}) for i in range(20)))
    assert paths == [f"f/t/{i}" for i in range(20)]
