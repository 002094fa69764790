"""Windmill InputTransform JavaScript expressions, evaluated by V8 (mini-racer).

Like Windmill (windmill-worker js_eval.rs): an expression without `return ` is wrapped as
`return <expr>` in an async function; one with `return ` is used as the function body.
`error` is `previous_result?.error` unless given. `resource(path)` and `variable(path)` call back
into Python and are awaited automatically, as Windmill rewrites them to `(await resource(...))`.

One V8 context serves a whole flow run. mini-racer contexts are not thread-safe: use a JsEval
only from the event loop thread that entered it.
"""

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, closing
from typing import Any, Literal

from py_mini_racer import JSEvalException, JSPromiseError, MiniRacer

Lookup = Callable[[Literal["resource", "variable"], str], Awaitable[Any]]
HOST_CALLS = ("resource", "variable")


class ExprError(Exception):
    """An expression failed to parse, threw, timed out or returned something JSON cannot hold."""


class JsEval:
    def __init__(self, lookup: Lookup, timeout: float = 10.0) -> None:
        self._lookup = lookup
        self._timeout = timeout
        self._stack = AsyncExitStack()
        self._ctx: MiniRacer | None = None

    async def __aenter__(self) -> "JsEval":
        ctx = self._stack.enter_context(closing(MiniRacer()))
        host = await self._stack.enter_async_context(ctx.wrap_py_function(self._host))
        ctx.eval("globalThis")["__wm_host"] = host
        for name in HOST_CALLS:
            ctx.eval(
                f"globalThis.{name} = async (p) => {{ const r = JSON.parse(await __wm_host('{name}', p));"
                " if ('error' in r) throw new Error(r.error); return r.value; };"
            )
        self._ctx = ctx
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._ctx = None
        await self._stack.aclose()

    async def eval(self, expr: str, scope: dict[str, Any]) -> Any:
        """The JSON value of `expr`, with each key of `scope` bound to a JS constant."""
        return await self._run(expr, scope, "x === undefined ? null : x")

    async def test(self, expr: str, scope: dict[str, Any]) -> bool:
        """JavaScript truthiness of `expr` (branch, skip_if, stop_after_if, retry_if)."""
        return await self._run(expr, scope, "Boolean(x)")

    async def _run(self, expr: str, scope: dict[str, Any], convert: str) -> Any:
        assert self._ctx, "use JsEval as an async context manager"
        expr = expr.strip()
        body = expr if "return " in expr else f"return {expr}"
        bindings = "".join(f"const {name} = __scope[{json.dumps(name)}];\n" for name in scope)
        if "error" not in scope:
            bindings += "const error = __scope.previous_result?.error;\n"
        code = (
            f"(async (__scope) => {{\n{bindings}{_await_host_calls(body)}\n}})({json.dumps(scope)})"
            f".then((x) => JSON.stringify({convert}))"
        )
        try:
            promise = await asyncio.wait_for(self._ctx.eval_cancelable(code), self._timeout)
            text = await asyncio.wait_for(promise, self._timeout)
        except TimeoutError:
            raise ExprError(f"expression `{expr}` took longer than {self._timeout}s") from None
        except (JSEvalException, JSPromiseError) as e:
            raise ExprError(f"expression `{expr}` failed: {_js_error(str(e))}") from None
        if not isinstance(text, str):
            raise ExprError(f"expression `{expr}` returned a value JSON cannot hold")
        return json.loads(text)

    async def _host(self, kind: Literal["resource", "variable"], path: str) -> str:
        try:
            return json.dumps({"value": await self._lookup(kind, path)})
        except Exception as e:
            return json.dumps({"error": f"{kind}({path!r}): {e}"})


def _await_host_calls(code: str) -> str:
    """`resource(p)` -> `(await resource(p))`, for every host call not already awaited."""
    for name in HOST_CALLS:
        head, *rest = re.split(rf"(?<![\w.$])(?<!await ){name}\(", code)
        for part in rest:
            end = _closing_paren(part)
            head += f"(await {name}({part[:end]}){part[end:]}"
        code = head
    return code


def _closing_paren(s: str) -> int:
    """Index of the `)` closing a call whose `(` was just before s (or len(s))."""
    depth = 1
    for i, c in enumerate(s):
        depth += {"(": 1, ")": -1}.get(c, 0)
        if depth == 0:
            return i + 1
    return len(s)


def _js_error(message: str) -> str:
    """The `SomeError: message` line of a V8 error report."""
    line = next((x for x in message.splitlines() if "Error" in x), message.strip())
    return re.sub(r"^.*?(?:reason: |<anonymous>:\d+: )", "", line)
