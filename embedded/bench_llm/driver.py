"""One client under test, in its own process: `python driver.py '<config json>'`.

Runs under the project's venv (client "ours", "single") or the bench venv (the peers); imports only
the standard library, httpx and the client it drives, so the peers need nothing from this project.

Protocol (one JSON object per line):
  config (argv) -> driver builds the client, prints {"ready": true}
  stdin {"mode": "load", "start_at": epoch_s, "arrivals": [s, ...]}
        -> open-loop: request i starts at start_at + arrivals[i], gets `deadline_s`, and is recorded;
           prints {"records": [[arrival_s, latency_s, ok], ...], "errors": {kind: n}}
  stdin {"mode": "overhead", "pairs": n}
        -> n calls through the client and n raw httpx posts to the same zero-latency backend,
           interleaved; prints {"client_ms": [...], "raw_ms": [...]}
"""

import asyncio
import contextlib
import faulthandler
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [
    {"role": "system", "content": "Extract the fields of the document as JSON."},
    {"role": "user", "content": "ENGAGEMENT LETTER. Matter 2024-0113. Fee: USD 12,500. " * 8},
]
SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["summary", "amount"],
    "properties": {"summary": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                   "amount": {"anyOf": [{"type": "number"}, {"type": "null"}]}},
}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "BenchAnswer", "strict": True, "schema": SCHEMA}}
MAX_TOKENS = 50
Call = Callable[[], Awaitable[Any]]


def azure_url(base: str, deployment: str, api_version: str) -> str:
    return f"{base}/openai/deployments/{deployment}/chat/completions?api-version={api_version}"


async def build(cfg: dict[str, Any]) -> tuple[Call, Callable[[], Awaitable[None]]]:
    """(one call, close) for the client named in cfg["client"]."""
    kind, backends = cfg["client"], cfg["backends"]
    deadline, timeout, attempts = cfg["deadline_s"], cfg["timeout_s"], cfg["attempts"]

    if kind == "ours":
        sys.path.insert(0, str(ROOT))
        from pydantic import BaseModel, ConfigDict

        from f.llm.client import LLMClient

        class BenchAnswer(BaseModel):
            model_config = ConfigDict(extra="forbid")
            summary: str | None
            amount: float | None

        pool = {
            "deadline_s": deadline, "max_attempts": attempts,
            "backends": [{"name": b["name"], "kind": "azure", "base_url": b["base_url"], "model": b["deployment"],
                          "api_version": b["api_version"], "auth": "key", "api_key": b["api_key"],
                          "priority": b["priority"], "rpm": b.get("rpm"), "max_inflight": 64, "timeout_s": timeout}
                         for b in backends],
        }
        client = LLMClient(pool)
        await client.__aenter__()

        async def ours() -> Any:
            return await client.complete_json(MESSAGES, BenchAnswer, max_tokens=MAX_TOKENS)
        return ours, client.aclose

    if kind == "priority-lb":
        from openai import AsyncAzureOpenAI
        from openai_priority_loadbalancer import AsyncLoadBalancer, Backend

        # As its README shows: the balancer is the transport of the openai SDK's httpx client. It swaps
        # the host of each request, so the backends differ by host (127.0.0.x) and share one port.
        lb = AsyncLoadBalancer([Backend(httpx.URL(b["base_url"]).host, b["priority"], api_key=b["api_key"])
                                for b in backends])
        sdk = AsyncAzureOpenAI(azure_endpoint=backends[0]["base_url"], api_key=backends[0]["api_key"],
                               api_version=backends[0]["api_version"], max_retries=attempts - 1, timeout=timeout,
                               http_client=httpx.AsyncClient(transport=lb))

        async def priority_lb() -> Any:
            return await sdk.chat.completions.create(model=backends[0]["deployment"], messages=MESSAGES,
                                                     max_tokens=MAX_TOKENS, response_format=RESPONSE_FORMAT)

        async def close_lb() -> None:
            await sdk.close()
            await lb._transport.aclose()
        return priority_lb, close_lb

    if kind == "litellm":
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm
        from litellm import Router

        litellm.suppress_debug_info = True
        router = Router(
            model_list=[{"model_name": "bench", "litellm_params": {
                "model": f"azure/{b['deployment']}", "api_base": b["base_url"], "api_key": b["api_key"],
                "api_version": b["api_version"], "order": b["priority"], "rpm": b.get("rpm"), "timeout": timeout,
            }} for b in backends],
            num_retries=attempts - 1, timeout=timeout, routing_strategy="simple-shuffle",
        )

        async def via_litellm() -> Any:
            return await router.acompletion(model="bench", messages=MESSAGES, max_tokens=MAX_TOKENS,
                                            response_format=RESPONSE_FORMAT)

        async def close_litellm() -> None:
            return None
        return via_litellm, close_litellm

    if kind == "single":
        tier1 = min(backends, key=lambda b: b["priority"])
        http = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=256))
        url = azure_url(tier1["base_url"], tier1["deployment"], tier1["api_version"])
        body = {"messages": MESSAGES, "max_tokens": MAX_TOKENS, "response_format": RESPONSE_FORMAT}

        async def single() -> Any:
            """Raw httpx to tier 1; 429: wait its Retry-After; 5xx or timeout: back off 0.5 s, 1 s, ..."""
            for attempt in range(attempts):
                last = attempt == attempts - 1
                try:
                    resp = await http.post(url, json=body, headers={"api-key": tier1["api_key"]})
                except httpx.TransportError:
                    if last:
                        raise
                    await asyncio.sleep(0.5 * 2 ** attempt)
                    continue
                if resp.status_code == 200:
                    return resp.json()
                if last:
                    resp.raise_for_status()
                if resp.status_code == 429:
                    ms = resp.headers.get("retry-after-ms")
                    await asyncio.sleep(float(ms) / 1000 if ms else float(resp.headers.get("retry-after", "1")))
                else:
                    await asyncio.sleep(0.5 * 2 ** attempt)
            raise RuntimeError("unreachable")
        return single, http.aclose

    raise SystemExit(f"unknown client {kind!r}")


async def load(call: Call, start_at: float, arrivals: list[float], deadline: float) -> dict[str, Any]:
    records: list[list[Any]] = []
    errors: Counter[str] = Counter()
    t0 = time.monotonic() + (start_at - time.time())

    abandoned: list[asyncio.Task[Any]] = []
    samples: list[str] = []

    async def one(offset: float) -> None:
        """The deadline is the caller's: at it the call is cancelled and counted as failed, without waiting
        for the client to honour the cancellation."""
        begun = time.monotonic()
        task = asyncio.ensure_future(call())
        done, _ = await asyncio.wait({task}, timeout=deadline)
        if not done:
            task.cancel()
            abandoned.append(task)
            records.append([offset, time.monotonic() - begun, False])
            errors["DeadlineExceeded"] += 1
        elif task.cancelled() or task.exception() is not None:
            records.append([offset, time.monotonic() - begun, False])
            errors["Cancelled" if task.cancelled() else type(task.exception()).__name__] += 1
            if len(samples) < 3 and not task.cancelled():
                samples.append(str(task.exception())[:600])
        else:
            records.append([offset, time.monotonic() - begun, True])

    tasks = []
    for offset in arrivals:
        await asyncio.sleep(max(0.0, t0 + offset - time.monotonic()))
        tasks.append(asyncio.create_task(one(offset)))
    await asyncio.gather(*tasks)
    await asyncio.sleep(1.0)
    stuck = sum(1 for t in abandoned if not t.done())  # calls that ignored their cancellation
    return {"records": records, "errors": dict(errors), "error_samples": samples, "stuck_after_cancel": stuck}


async def overhead(call: Call, cfg: dict[str, Any], pairs: int) -> dict[str, Any]:
    b = cfg["backends"][0]
    url = azure_url(b["base_url"], b["deployment"], b["api_version"])
    body = {"messages": MESSAGES, "max_tokens": MAX_TOKENS, "response_format": RESPONSE_FORMAT}
    client_ms: list[float] = []
    raw_ms: list[float] = []
    async with httpx.AsyncClient() as http:
        async def raw() -> Any:
            resp = await http.post(url, json=body, headers={"api-key": b["api_key"]})
            resp.raise_for_status()
            return resp.json()

        for _ in range(20):  # warm both: connections, caches, lazy imports
            await call()
            await raw()
        for i in range(pairs):
            for fn, out in ((call, client_ms), (raw, raw_ms)) if i % 2 else ((raw, raw_ms), (call, client_ms)):
                t = time.perf_counter()
                await fn()
                out.append((time.perf_counter() - t) * 1000)
    return {"client_ms": client_ms, "raw_ms": raw_ms}


async def main(cfg: dict[str, Any]) -> None:
    call, close = await build(cfg)
    print(json.dumps({"ready": True}), flush=True)
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    order = json.loads(line)
    if order["mode"] == "load":
        # a watchdog: a driver stuck past its arrivals plus the deadline dumps its stacks and exits
        faulthandler.dump_traceback_later(order["arrivals"][-1] + cfg["deadline_s"] + 30 if order["arrivals"]
                                          else 60, exit=True)
        out = await load(call, order["start_at"], order["arrivals"], cfg["deadline_s"])
        faulthandler.cancel_dump_traceback_later()
    else:
        out = await overhead(call, cfg, order["pairs"])
    with contextlib.suppress(Exception):
        await asyncio.wait_for(close(), 5)
    print(json.dumps(out), flush=True)
    os._exit(0)  # do not wait for calls that ignored their cancellation


if __name__ == "__main__":
    import logging

    logging.disable(logging.WARNING)  # per-call log lines are not what is measured
    asyncio.run(main(json.loads(sys.argv[1])))
