"""A simulated pool of LLM backends: real HTTP servers on loopback that throttle, fail and hang.

Each `SimBackendSpec` becomes one aiohttp server (port 0) speaking the OpenAI chat-completions
API in the "openai" style (`POST /v1/chat/completions`) or the Azure OpenAI style
(`POST /openai/deployments/{d}/chat/completions?api-version=...`, `api-key` header). It enforces
RPM/TPM with sliding windows (real 429s with `Retry-After` or `retry-after-ms`), reports
`x-ratelimit-remaining-*` and `usage`, returns `logprobs` when asked, and injects faults:
5xx, hangs, slow-drip bodies, malformed JSON, schema-invalid JSON, down windows (503 or
refused connections). `GET /stats` shows what the server saw (requests, 429s, max concurrency).

The answers come from `embedded.simmodel.answer(messages, schema, rng)` when that module exists,
else from a minimal schema-shaped answer.

    async with run_sim_pool(default_sim_specs()) as backends:
        pool = pool_resource(default_sim_specs(), backends)

CLI (for the local runner's services): `python -m embedded.simpool --config specs.json`
(or `--default`) prints one JSON line `{"backends": [...], "llm_pool": {...}}` once listening,
then serves until SIGINT/SIGTERM.
"""

import argparse
import asyncio
import contextlib
import json
import logging
import math
import random
import signal
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from email.utils import formatdate
from typing import Any, Literal, NamedTuple

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger("embedded.simpool")

SCHEMA_MARK = "conforms to this JSON Schema:"
"""How a plain json_object client states the schema in the prompt (see f.llm.structured)."""


class SimBackendSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    style: Literal["openai", "azure"] = "openai"
    deployment: str = "sim-model"
    """azure deployment name, or the model name an openai-style server reports"""
    api_key: str | None = None
    """required from clients when set (`api-key` for azure, `Authorization: Bearer` for openai)"""
    latency_ms: float = 50.0
    jitter: float = Field(default=0.3, ge=0, le=1, description="latency varies uniformly by +- this fraction")
    tokens_per_s: float | None = Field(default=None, gt=0, description="generation speed; adds completion time")
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    window_s: float = Field(default=60.0, gt=0, description="sliding window; the limit in it is rpm * window_s / 60")
    retry_after_style: Literal["seconds", "ms", "date", "none"] = "seconds"
    p_5xx: float = Field(default=0.0, ge=0, le=1)
    p_hang: float = Field(default=0.0, ge=0, le=1)
    hang_s: float = 3600.0
    p_slow_drip: float = Field(default=0.0, ge=0, le=1)
    drip_s: float = Field(default=30.0, gt=0, description="how long a slow-drip body takes to arrive")
    p_bad_json: float = Field(default=0.0, ge=0, le=1)
    bad_json_style: Literal["truncated", "fenced", "mixed"] = "mixed"
    """truncated cannot be repaired; fenced (code fence plus prose) can"""
    p_invalid: float = Field(default=0.0, ge=0, le=1)
    down_windows: list[tuple[float, float]] = Field(default_factory=list)
    """(start_s, end_s) after server start during which the backend is down"""
    down_mode: Literal["503", "refuse"] = "503"
    wrong_rate: float = Field(default=0.0, ge=0, le=1, description="simulated model misreads a field now and then")
    seed: int = 0
    # How a client should use this backend: its entry in the generated llm_pool resource.
    priority: int = 1
    weight: float = 1.0
    max_inflight: int = 8
    timeout_s: float = 10.0
    structured_output: Literal["json_schema", "json_object_schema", "json_object"] = "json_schema"
    logprobs: bool = True


class SimBackend(NamedTuple):
    name: str
    base_url: str

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")

    @property
    def stats_url(self) -> str:
        return f"{self.root}/stats"


# --- answers ---------------------------------------------------------------------------------

def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = {**defs[node["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def minimal_answer(schema: dict[str, Any]) -> Any:
    """A schema-shaped answer with nulls and empties: the fallback when no simulated model exists."""
    defs = schema.get("$defs", {})

    def build(node: dict[str, Any]) -> Any:
        node = _resolve(node, defs)
        if "enum" in node:
            return node["enum"][0]
        if "const" in node:
            return node["const"]
        options = node.get("anyOf") or node.get("oneOf")
        if options:
            nullable = any(o.get("type") == "null" for o in options)
            return None if nullable else build(options[0])
        kind = node.get("type")
        kind = (kind[0] if kind else None) if isinstance(kind, list) else kind
        if kind == "object" or "properties" in node:
            return {k: build(v) for k, v in node.get("properties", {}).items()}
        return {"array": [], "string": "", "integer": 0, "number": 0.0, "boolean": False}.get(kind or "", None)

    return build(schema)


def _answerer() -> Callable[..., Any]:
    try:
        from embedded.simmodel import answer
    except ImportError:
        return lambda _messages, schema, _rng, **_kw: minimal_answer(schema)
    return answer


def request_schema(body: dict[str, Any]) -> dict[str, Any]:
    """The schema a request asks for: response_format json_schema, llama.cpp's json_object
    schema, or one stated in the prompt after SCHEMA_MARK."""
    rf = body.get("response_format") or {}
    found: Any = (rf.get("json_schema") or {}).get("schema") or rf.get("schema")
    for message in body.get("messages") or []:
        content = str(message.get("content") or "")
        at = content.find(SCHEMA_MARK)
        if found is None and at != -1:
            with contextlib.suppress(ValueError):
                found, _ = json.JSONDecoder().raw_decode(content, content.find("{", at))
    return found if isinstance(found, dict) else {"type": "object"}


# --- rate limits -----------------------------------------------------------------------------

class SlidingWindow:
    """Requests and tokens admitted in the last `window_s`; answers how long until a request fits."""

    def __init__(self, rpm: int | None, tpm: int | None, window_s: float) -> None:
        scale = window_s / 60.0
        self.max_requests = max(1, math.floor(rpm * scale)) if rpm else None
        self.max_tokens = max(1, math.floor(tpm * scale)) if tpm else None
        self.window_s = window_s
        self.log: deque[tuple[float, int]] = deque()

    def _prune(self, now: float) -> None:
        while self.log and self.log[0][0] <= now - self.window_s:
            self.log.popleft()

    def admit(self, tokens: int, now: float) -> float:
        """0 and record the request if it fits; else the seconds until it would."""
        self._prune(now)
        waits = [0.0]
        if self.max_requests is not None and len(self.log) + 1 > self.max_requests:
            waits.append(self.log[len(self.log) - self.max_requests][0] + self.window_s - now)
        if self.max_tokens is not None:
            over = sum(t for _, t in self.log) + min(tokens, self.max_tokens) - self.max_tokens
            for stamp, used in self.log:
                if over <= 0:
                    break
                over -= used
                waits.append(stamp + self.window_s - now)
        wait = max(waits)
        if wait <= 0:
            self.log.append((now, tokens))
        return wait

    def remaining(self, now: float) -> tuple[int | None, int | None]:
        self._prune(now)
        requests = self.max_requests - len(self.log) if self.max_requests is not None else None
        tokens = self.max_tokens - sum(t for _, t in self.log) if self.max_tokens is not None else None
        return (max(0, requests) if requests is not None else None, max(0, tokens) if tokens is not None else None)


# --- server ----------------------------------------------------------------------------------

def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


class SimServer:
    def __init__(self, spec: SimBackendSpec, host: str = "127.0.0.1", port: int = 0) -> None:
        self.spec, self.host = spec, host
        self.rng = random.Random(spec.seed)
        self.window = SlidingWindow(spec.rpm, spec.tpm, spec.window_s)
        self.stats = self._zero()
        self.port = port
        self.started = 0.0
        self._closing = asyncio.Event()
        self._answer = _answerer()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @staticmethod
    def _zero() -> dict[str, int]:
        keys = ("requests", "ok", "throttled_429", "errors_5xx", "hangs", "slow_drips", "bad_json", "invalid",
                "down", "unauthorized", "bad_request", "concurrent", "max_concurrent")
        return dict.fromkeys(keys, 0)

    @property
    def base_url(self) -> str:
        root = f"http://{self.host}:{self.port}"
        return f"{root}/v1" if self.spec.style == "openai" else root

    async def start(self) -> None:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_get("/stats", self._get_stats)
        app.router.add_post("/stats/reset", self._reset_stats)
        app.router.add_post("/reset", self._reset_all)
        if self.spec.style == "openai":
            app.router.add_post("/v1/chat/completions", self._complete)
        else:
            app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._complete)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True)
        await self._runner.setup()
        await self._listen()
        self.started = time.monotonic()
        if self.spec.down_mode == "refuse" and self.spec.down_windows:
            self._tasks.append(asyncio.create_task(self._refuse_windows()))

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        if not self.port:
            self.port = self._runner.addresses[0][1]

    async def _refuse_windows(self) -> None:
        """Close the listening socket during each down window, so connections are refused."""
        for start, end in sorted(self.spec.down_windows):
            await asyncio.sleep(max(0.0, self.started + start - time.monotonic()))
            if self._site is not None:
                await self._site.stop()
                self._site = None
            await asyncio.sleep(max(0.0, self.started + end - time.monotonic()))
            await self._listen()

    async def stop(self) -> None:
        self._closing.set()
        for task in self._tasks:
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    def _down(self) -> bool:
        t = time.monotonic() - self.started
        return any(start <= t < end for start, end in self.spec.down_windows)

    async def _get_stats(self, _request: web.Request) -> web.Response:
        return web.json_response({"name": self.spec.name, **self.stats})

    async def _reset_stats(self, _request: web.Request) -> web.Response:
        self._reset_counts()
        return web.json_response({"ok": True})

    def reset(self) -> None:
        """Start over: stats, rate window, fault dice, and the clock that down windows count from."""
        self._reset_counts()
        self.window = SlidingWindow(self.spec.rpm, self.spec.tpm, self.spec.window_s)
        self.rng = random.Random(self.spec.seed)
        self.started = time.monotonic()

    async def _reset_all(self, _request: web.Request) -> web.Response:
        if self.spec.down_mode == "refuse" and self.spec.down_windows:
            return self._error(400, "reset_unsupported_with_refuse_windows")
        self.reset()
        return web.json_response({"ok": True})

    def _reset_counts(self) -> None:
        concurrent = self.stats["concurrent"]
        self.stats = self._zero() | {"concurrent": concurrent, "max_concurrent": concurrent}

    def _error(self, status: int, code: str, headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response({"error": {"code": code, "message": f"simulated {code}"}}, status=status,
                                 headers=headers)

    def _check_request(self, request: web.Request) -> web.Response | None:
        spec = self.spec
        if spec.style == "azure":
            if "api-version" not in request.query:
                self.stats["bad_request"] += 1
                return self._error(400, "MissingApiVersionParameter")
            if request.match_info["deployment"] != spec.deployment:
                self.stats["bad_request"] += 1
                return self._error(404, "DeploymentNotFound")
        if spec.api_key:
            given = request.headers.get("api-key") if spec.style == "azure" else \
                request.headers.get("Authorization", "").removeprefix("Bearer ")
            if given != spec.api_key:
                self.stats["unauthorized"] += 1
                return self._error(401, "Unauthorized")
        return None

    def _throttle(self, tokens: int) -> web.Response | None:
        now = time.monotonic()
        wait = self.window.admit(tokens, now)
        if wait <= 0:
            return None
        self.stats["throttled_429"] += 1
        style = self.spec.retry_after_style
        headers = {
            "seconds": {"Retry-After": str(max(1, math.ceil(wait)))},
            "ms": {"retry-after-ms": str(max(1, math.ceil(wait * 1000))), "Retry-After": str(max(1, math.ceil(wait)))},
            "date": {"Retry-After": formatdate(time.time() + max(1.0, wait), usegmt=True)},
            "none": {},
        }[style]
        return self._error(429, "429", headers | self._remaining_headers())

    def _remaining_headers(self) -> dict[str, str]:
        requests, tokens = self.window.remaining(time.monotonic())
        out = {}
        if requests is not None:
            out["x-ratelimit-remaining-requests"] = str(requests)
        if tokens is not None:
            out["x-ratelimit-remaining-tokens"] = str(tokens)
        return out

    def _fault(self) -> str | None:
        spec, r = self.spec, self.rng.random()
        for name, p in (("5xx", spec.p_5xx), ("hang", spec.p_hang), ("drip", spec.p_slow_drip),
                        ("bad_json", spec.p_bad_json), ("invalid", spec.p_invalid)):
            if r < p:
                return name
            r -= p
        return None

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        self.stats["requests"] += 1
        self.stats["concurrent"] += 1
        self.stats["max_concurrent"] = max(self.stats["max_concurrent"], self.stats["concurrent"])
        try:
            return await self._serve(request)
        finally:
            self.stats["concurrent"] -= 1

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        spec = self.spec
        if self._down():
            self.stats["down"] += 1
            if spec.down_mode == "refuse" and request.transport is not None:
                request.transport.abort()  # a kept-alive connection: drop it like a dead host would
            return self._error(503, "ServiceUnavailable")
        if (rejected := self._check_request(request)) is not None:
            return rejected
        try:
            body = await request.json()
            messages = list(body["messages"])
        except (ValueError, KeyError, TypeError):
            self.stats["bad_request"] += 1
            return self._error(400, "invalid_request")
        prompt_tokens = _tokens(json.dumps(messages)) + _tokens(json.dumps(body.get("response_format") or {}))
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 1000)
        if (throttled := self._throttle(prompt_tokens + max_tokens)) is not None:
            return throttled
        fault = self._fault()
        await asyncio.sleep(spec.latency_ms / 1000 * self.rng.uniform(1 - spec.jitter, 1 + spec.jitter))
        if fault == "5xx":
            self.stats["errors_5xx"] += 1
            return self._error(self.rng.choice((500, 502, 503)), "InternalServerError")
        if fault == "hang":
            self.stats["hangs"] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), spec.hang_s)
            return self._error(504, "GatewayTimeout")
        try:
            extra = {"wrong_rate": spec.wrong_rate} if spec.wrong_rate else {}
            answer = self._answer(messages, request_schema(body), self.rng, **extra)
        except Exception:
            log.exception("simulated model failed on %s", spec.name)
            self.stats["errors_5xx"] += 1
            return self._error(500, "simmodel_error")
        content = self._content(answer, fault)
        completion_tokens = _tokens(content)
        if spec.tokens_per_s:
            await asyncio.sleep(completion_tokens / spec.tokens_per_s)
        reply: dict[str, Any] = {
            "id": f"chatcmpl-sim-{self.stats['requests']}", "object": "chat.completion", "created": int(time.time()),
            "model": spec.deployment,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }
        if body.get("logprobs"):
            reply["choices"][0]["logprobs"] = {"content": [
                {"token": content[i:i + 4], "logprob": -abs(self.rng.gauss(0, 0.2)), "bytes": None, "top_logprobs": []}
                for i in range(0, min(len(content), 1024), 4)
            ]}
        headers = self._remaining_headers()
        if fault == "drip":
            self.stats["slow_drips"] += 1
            return await self._drip(request, json.dumps(reply).encode(), headers)
        self.stats["ok"] += 1
        return web.json_response(reply, headers=headers)

    def _content(self, answer: Any, fault: str | None) -> str:
        text = json.dumps(answer)
        if fault == "bad_json":
            self.stats["bad_json"] += 1
            style = self.spec.bad_json_style
            if style == "mixed":
                style = self.rng.choice(("truncated", "fenced"))
            if style == "fenced":
                return f"Here is the JSON you asked for:\n```json\n{text}\n```\nLet me know if you need more."
            return text[: max(1, len(text) * 2 // 3)]
        if fault == "invalid":
            self.stats["invalid"] += 1
            broken = dict(answer) if isinstance(answer, dict) else {}
            first = next(iter(broken), None)
            if first is not None:
                broken[first] = 12345
            broken["unexpected_field"] = True
            return json.dumps(broken)
        return text

    async def _drip(self, request: web.Request, payload: bytes, headers: dict[str, str]) -> web.StreamResponse:
        """Send headers at once, then the body a few bytes at a time over `drip_s`."""
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json", **headers})
        resp.content_length = len(payload)
        await resp.prepare(request)
        pieces = max(1, min(len(payload), 50))
        step = math.ceil(len(payload) / pieces)
        for i in range(0, len(payload), step):
            try:
                await asyncio.wait_for(self._closing.wait(), self.spec.drip_s / pieces)
                break
            except TimeoutError:
                pass
            await resp.write(payload[i:i + step])
        await resp.write_eof()
        return resp


@contextlib.asynccontextmanager
async def run_sim_pool(specs: Sequence[SimBackendSpec], host: str = "127.0.0.1") -> AsyncIterator[list[SimBackend]]:
    servers = [SimServer(spec, host) for spec in specs]
    try:
        for server in servers:
            await server.start()
        yield [SimBackend(s.spec.name, s.base_url) for s in servers]
    finally:
        await asyncio.gather(*(s.stop() for s in servers), return_exceptions=True)


def pool_resource(
    specs: Sequence[SimBackendSpec], backends: Sequence[tuple[str, str]], **pool: Any
) -> dict[str, Any]:
    """The `llm_pool` resource that reaches these simulated backends; `pool` overrides pool-level
    keys (deadline_s, max_attempts, breaker, ...)."""
    urls = dict(backends)
    entries = []
    for spec in specs:
        entry: dict[str, Any] = {
            "name": spec.name, "kind": spec.style, "base_url": urls[spec.name], "model": spec.deployment,
            "auth": "key" if spec.api_key else "none", "priority": spec.priority, "weight": spec.weight,
            "rpm": spec.rpm, "tpm": spec.tpm, "max_inflight": spec.max_inflight, "timeout_s": spec.timeout_s,
            "structured_output": spec.structured_output, "logprobs": spec.logprobs,
        }
        if spec.api_key:
            entry["api_key"] = spec.api_key
        if spec.style == "azure":
            entry["api_version"] = "2024-10-21"
        entries.append(entry)
    return {"backends": entries, "deadline_s": 60.0, "max_attempts": 4, **pool}


def default_sim_specs() -> list[SimBackendSpec]:
    """The demo pool: a provisioned tier-1 Azure deployment that throttles with retry-after-ms, and
    two pay-as-you-go tier-2 backends (Azure with Retry-After seconds, and a vLLM server)."""
    return [
        SimBackendSpec(name="provisioned", style="azure", deployment="gpt-4o-ptu", api_key="sim-key-provisioned",
                       latency_ms=40, rpm=240, tpm=240_000, window_s=10, retry_after_style="ms", p_5xx=0.005,
                       seed=1, priority=1, weight=1, max_inflight=8, timeout_s=10),
        SimBackendSpec(name="paygo", style="azure", deployment="gpt-4o-mini", api_key="sim-key-paygo",
                       latency_ms=70, rpm=600, tpm=600_000, window_s=10, retry_after_style="seconds",
                       p_5xx=0.01, seed=2, priority=2, weight=2, max_inflight=8, timeout_s=10),
        SimBackendSpec(name="vllm", style="openai", deployment="meta-llama/Llama-3.3-70B-Instruct",
                       latency_ms=60, p_5xx=0.01, p_bad_json=0.01, bad_json_style="fenced", seed=3, priority=2,
                       weight=1, max_inflight=6, timeout_s=10),
    ]


def _load_specs(path: str | None) -> list[SimBackendSpec]:
    if path is None:
        return default_sim_specs()
    with open(path) as f:
        raw = json.load(f)
    items = raw["backends"] if isinstance(raw, dict) else raw
    return [SimBackendSpec.model_validate(item) for item in items]


async def _serve_forever(specs: list[SimBackendSpec], host: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with run_sim_pool(specs, host) as backends:
        ready = {
            "backends": [{"name": b.name, "base_url": b.base_url, "stats_url": b.stats_url} for b in backends],
            "llm_pool": pool_resource(specs, backends),
        }
        print(json.dumps(ready), flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m embedded.simpool", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", help="JSON file: a list of SimBackendSpec, or {\"backends\": [...]}")
    source.add_argument("--default", action="store_true", help="serve default_sim_specs() (also without --config)")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve_forever(_load_specs(args.config), args.host))


if __name__ == "__main__":
    main()
