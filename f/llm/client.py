"""The LLM pool client: route, admit, retry, parse.

    async with LLMClient(pool_resource) as client:
        res = await client.complete_json(messages=msgs, schema=ChunkExtraction, max_tokens=800)

One call = one deadline (`deadline_s`). Inside it the client makes attempts until one returns
output that validates against `schema`:
- 429: the backend cools down for its `retry-after(-ms)` and the next attempt goes at once to
  another backend with capacity; when all are cooling it waits for the earliest. 429s do not
  spend `max_attempts`; only the deadline bounds them, so a 429 is surfaced only when no backend
  can serve before the deadline.
- 5xx, timeout, connection error: counted by the backend's breaker; the next attempt goes
  elsewhere (back to the same backend only if nothing else can serve soon, and after a short
  backoff). 503 and refused connections, like 429s, do not spend `max_attempts`: the backend says
  it cannot take the request, which was not processed.
- invalid output (bad JSON, schema mismatch after the cheap repair): re-asked, preferring a
  backend not yet tried.
Everything else spends `max_attempts`. On exhaustion: `LLMCallFailed`, whose message
lists the attempts (backend, outcome, status, time) and nothing from the prompt or the keys.
"""

import asyncio
import bisect
import contextlib
import functools
import itertools
import json
import math
import random
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel

from f.llm.admission import Gate, LocalAdmission, Permit
from f.llm.auth import AsyncTokenCredential, Auth, AuthError
from f.llm.breaker import Breaker, LocalBreaker
from f.llm.pool import BackendConfig, LLMPool, StructuredMode
from f.llm.retry_after import parse_remaining, parse_retry_after
from f.llm.router import Choice, Route, pick
from f.llm.shared import Board, BoardStore
from f.llm.stats import BackendStats, Outcome, log, log_attempt
from f.llm.structured import InvalidOutput, parse_reply, response_format, with_schema_prompt

CONNECT_TIMEOUT_S = 5.0
MIN_COOLDOWN_S = 0.05
REVISIT_BACKOFF_S = 0.5
"""a call goes back to the backend that just failed it only after this times its attempts so far"""
BREAKER_STATUSES = {401, 403, 404}
"""4xx that mean the backend itself is unusable (bad key, missing deployment): they count as failures."""


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class LLMResult(BaseModel):
    parsed: dict[str, Any]
    backend: str
    model: str
    latency_s: float
    """wall time of the whole call, failovers included"""
    usage: Usage
    """of the attempt that produced `parsed`"""
    attempts: int
    """HTTP attempts made, 429s included"""
    logprob_mean: float | None = None
    temperature: float = 0.0
    """of the attempt that produced `parsed` (the pool's repeat_temperature on a sibling's backend)"""


@dataclass(frozen=True)
class Attempt:
    backend: str
    outcome: Outcome
    status: int | None
    latency_s: float
    detail: str = ""

    @property
    def spends_budget(self) -> bool:
        """429, 503 and refused connections say the backend cannot take the request now, not that the
        request went wrong (it was not processed): like throttling, only the deadline bounds them."""
        return not (self.outcome in ("throttled", "connect_error") or self.status == 503)

    def __str__(self) -> str:
        status = f" {self.status}" if self.status else ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.backend}: {self.outcome}{status} after {self.latency_s:.2f}s{detail}"


class LLMCallFailed(RuntimeError):
    def __init__(self, reason: str, attempts: Sequence[Attempt], elapsed_s: float) -> None:
        self.reason, self.attempts, self.elapsed_s = reason, list(attempts), elapsed_s
        lines = [f"LLM call failed: {reason} ({len(attempts)} attempts in {elapsed_s:.1f}s)"]
        lines += [f"  #{i} {a}" for i, a in enumerate(attempts, 1)]
        super().__init__("\n".join(lines))


@dataclass(eq=False)
class _Waiter:
    """A call waiting for capacity (see LLMClient._dispatch for the order they are served in)."""

    tokens: int
    avoid: frozenset[str]
    spread: set[str] | None
    exclude: str | None
    exclude_until: float
    started: float
    deadline: float
    seq: int
    fut: "asyncio.Future[tuple[Route, Permit]]"

    def __lt__(self, other: "_Waiter") -> bool:
        return (self.deadline, self.seq) < (other.deadline, other.seq)


@functools.lru_cache(maxsize=64)
def _response_format(mode: StructuredMode, schema: type[BaseModel]) -> dict[str, Any]:
    """Cached per (mode, model); shared, so never mutate the result."""
    return response_format(mode, schema)


@functools.lru_cache(maxsize=64)
def _schema_chars(schema: type[BaseModel]) -> int:
    return len(json.dumps(schema.model_json_schema()))


def _estimate_tokens(messages: Sequence[dict[str, Any]], schema: type[BaseModel], max_tokens: int) -> int:
    """TPM charge before the reply: prompt chars / 4 (the schema is billed as prompt too) + max_tokens."""
    chars = sum(len(str(m.get("content") or "")) for m in messages) + _schema_chars(schema)
    return chars // 4 + max_tokens


def _logprob_mean(choice: dict[str, Any]) -> float | None:
    lp = choice.get("logprobs") or {}
    items = lp.get("content") if isinstance(lp, dict) else None
    values = [t.get("logprob") for t in items] if isinstance(items, list) else (lp.get("token_logprobs") or [])
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(values) / len(values) if values else None


def _error_code(resp: httpx.Response) -> str:
    """The error code of an error body, never its message (which may quote the prompt)."""
    try:
        err = resp.json().get("error") or {}
        return str(err.get("code") or err.get("type") or "")[:60]
    except (ValueError, AttributeError):
        return ""


class LLMClient:
    def __init__(
        self,
        pool: LLMPool | dict[str, Any],
        *,
        http: httpx.AsyncClient | None = None,
        credential: AsyncTokenCredential | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        gate_factory: Callable[[BackendConfig, float], Gate] = LocalAdmission.for_backend,
        breaker_factory: Callable[[BackendConfig], Breaker] | None = None,
        board_store: BoardStore | None = None,
    ) -> None:
        """`board_store`: share budgets, cooldowns and breakers with every other process using this pool
        through that store (see f.llm.shared), unless the pool's `shared.enabled` is false."""
        self.pool = LLMPool.from_resource(pool)
        self._clock = clock
        self._rng = rng or random.Random()
        self._auth = Auth(credential)
        self._queue: list[_Waiter] = []
        self._seq = itertools.count()
        self._board: Board | None = None
        if board_store is not None and self.pool.shared.enabled:
            board = self._board = Board(board_store, self.pool, clock=clock, on_change=self._dispatch)
            gate_factory = board.gate
            breaker_factory = lambda cfg: board.breaker(cfg, self.pool.breaker)
        make_breaker = breaker_factory or (lambda _cfg: LocalBreaker(self.pool.breaker))
        now = clock()
        self._routes = [Route(b, gate_factory(b, now), make_breaker(b), BackendStats()) for b in self.pool.backends]
        self._http = http
        self._owns_http = http is None

    def __repr__(self) -> str:
        return f"LLMClient(backends={[r.name for r in self._routes]})"

    async def __aenter__(self) -> "LLMClient":
        if self._http is None:
            slots = sum(b.max_inflight for b in self.pool.backends)
            # An SSL context (the CA bundle, 30-120 ms per job) only for a pool that speaks TLS somewhere.
            tls = any(b.base_url.lower().startswith("https:") for b in self.pool.backends)
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(60.0, connect=CONNECT_TIMEOUT_S),
                limits=httpx.Limits(max_connections=slots + 8, max_keepalive_connections=slots),
                verify=tls,
            )
        if self._board is not None:
            await self._board.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._board is not None:
            await self._board.close()
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    def stats(self) -> dict[str, dict[str, int]]:
        """Per-backend counters: calls, ok, throttled_429, errors_5xx, timeouts, connect_errors,
        invalid_outputs, rejected_4xx, breaker_trips."""
        return {r.name: r.stats.as_dict() for r in self._routes}

    def state(self) -> dict[str, dict[str, Any]]:
        """Per-backend live state: breaker, in flight, cooldown left, bucket levels (JSON-able)."""
        now = self._clock()
        return {r.name: {"breaker": r.breaker.state, **r.gate.snapshot(now)} for r in self._routes}

    async def complete_json(
        self,
        messages: Sequence[dict[str, Any]],
        schema: type[BaseModel],
        *,
        max_tokens: int = 800,
        temperature: float = 0.0,
        avoid: Collection[str] = frozenset(),
        spread: set[str] | None = None,
        deadline_s: float | None = None,
    ) -> LLMResult:
        """One validated JSON answer. `avoid`: backends to prefer not to use (used if nothing else
        can serve). `spread`: a set shared by sibling calls, e.g. the k samples of one chunk run
        concurrently: its members are avoided too, and each backend this call is admitted to is
        added at admission, so siblings in flight land on different backends. A call that still lands on a
        sibling's backend is sampled at the pool's `repeat_temperature`: an independent draw, not a copy."""
        if self._http is None:
            raise RuntimeError("use `async with LLMClient(...)` (or call __aenter__) before complete_json")
        start = self._clock()
        deadline = start + (deadline_s if deadline_s is not None else self.pool.deadline_s)
        tokens = _estimate_tokens(messages, schema, max_tokens)
        history: list[Attempt] = []
        tried: set[str] = set()
        claimed: set[str] = set()  # the backends this call added to `spread`
        last_failed: str | None = None
        failures = 0
        reason = f"attempt budget spent (max_attempts={self.pool.max_attempts})"
        while failures < self.pool.max_attempts:
            revisit_at = self._clock() + REVISIT_BACKOFF_S * len(history)
            admitted = await self._admit(tokens, frozenset(avoid) | tried, spread, last_failed, revisit_at, start,
                                         deadline)
            if admitted is None:
                reason = ("deadline reached" if self._clock() >= deadline
                          else "no backend can take the request before the deadline (throttled, full or broken)")
                break
            name = admitted[0].name
            repeat = spread is not None and name in spread and name not in claimed
            if spread is not None and name not in spread:
                spread.add(name)
                claimed.add(name)
            sampled = max(temperature, self.pool.repeat_temperature) if repeat else temperature
            attempt, result = await self._attempt(admitted, messages, schema, max_tokens, sampled, deadline,
                                                  len(history) + 1)
            history.append(attempt)
            if result is not None:
                return result.model_copy(update={"attempts": len(history), "latency_s": self._clock() - start,
                                                 "temperature": sampled})
            tried.add(attempt.backend)
            # Not straight back to a backend that just failed (a 429 in between makes it "not straight")
            last_failed = None if attempt.outcome == "throttled" else attempt.backend
            failures += attempt.spends_budget
        elapsed = self._clock() - start
        log.warning("llm.call_failed reason=%r attempts=%d elapsed_ms=%d", reason, len(history), elapsed * 1000)
        raise LLMCallFailed(reason, history, elapsed)

    async def _admit(
        self, tokens: int, avoid: frozenset[str], spread: set[str] | None, exclude: str | None,
        exclude_until: float, started: float, deadline: float,
    ) -> tuple[Route, Permit] | None:
        """A backend with its admission permit, waiting (within the deadline) while none has capacity."""
        w = _Waiter(tokens, avoid, spread, exclude, exclude_until, started, deadline, next(self._seq),
                    asyncio.get_running_loop().create_future())
        now = self._clock()
        if not self._queue:  # nobody waits before us: the common path
            choice = self._pick(w, now)
            if choice.route is not None:
                return self._take(choice.route, tokens, now)
            if self._hopeless(choice, now, deadline):
                return None
        bisect.insort(self._queue, w)
        try:
            while True:
                self._dispatch()
                if w.fut.done():
                    return w.fut.result()
                now = self._clock()
                choice = self._pick(w, now)
                if choice.route is not None:
                    self._queue.remove(w)
                    return self._take(choice.route, tokens, now)
                if self._hopeless(choice, now, deadline):
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(w.fut), min(choice.wait_s, deadline - now) + 0.001)
                if w.fut.done():
                    return w.fut.result()
        except BaseException:
            if w.fut.done() and not w.fut.cancelled():  # handed a permit, but leaving (cancelled): give it back
                route, permit = w.fut.result()
                route.gate.release(permit, 0, self._clock())
                route.breaker.abandon()
                self._dispatch()
            raise
        finally:
            if w in self._queue:
                self._queue.remove(w)

    def _pick(self, w: _Waiter, now: float) -> Choice:
        avoid = w.avoid | w.spread if w.spread else w.avoid
        patience = w.started + self.pool.spread_wait_s - now
        fresh = w.spread and any(r.name not in w.spread for r in self._routes)
        if fresh and patience > 0:  # wait a while for a backend the siblings have not used
            choice = pick(self._routes, w.tokens, now, w.deadline, avoid=avoid, shun=w.spread, exclude=w.exclude,
                          exclude_until=w.exclude_until, rng=self._rng)
            return choice if choice.route is not None or choice.wait_s <= patience else Choice(None, patience)
        return pick(self._routes, w.tokens, now, w.deadline, avoid=avoid, exclude=w.exclude,
                    exclude_until=w.exclude_until, rng=self._rng)

    def _hopeless(self, choice: Choice, now: float, deadline: float) -> bool:
        return now >= deadline or (not math.isinf(choice.wait_s) and now + choice.wait_s > deadline)

    def _take(self, route: Route, tokens: int, now: float) -> tuple[Route, Permit]:
        permit = route.gate.try_admit(tokens, now)
        assert permit is not None, "pick() chose a backend that cannot admit"
        route.breaker.enter(now)
        return route, permit

    def _dispatch(self) -> None:
        """Capacity may have freed (a request ended, a lease arrived): hand it to the waiting calls, earliest
        deadline first. (An adaptive LIFO, newest first once the oldest had waited half its deadline, made
        the backlog of a 20 s outage at 1x load expire: 3-11 errors per run against 0, and 0.81 goodput
        against 0.87 at 2x; scripts/bench-llm, README.)"""
        if not self._queue:
            return
        now = self._clock()
        for w in list(self._queue):
            if not any(r.wait_s(w.tokens, now) <= 0 for r in self._routes):
                break  # nothing can admit now; waiters wake themselves when a cooldown or refill is due
            choice = self._pick(w, now)
            if choice.route is not None:
                self._queue.remove(w)
                w.fut.set_result(self._take(choice.route, w.tokens, now))

    def _body(
        self, cfg: BackendConfig, messages: Sequence[dict[str, Any]], schema: type[BaseModel], max_tokens: int,
        temperature: float,
    ) -> dict[str, Any]:
        msgs = with_schema_prompt(list(messages), schema) if cfg.structured_output == "json_object" else list(messages)
        body: dict[str, Any] = {
            "messages": msgs, "max_tokens": max_tokens, "temperature": temperature,
            "response_format": _response_format(cfg.structured_output, schema),
        }
        if cfg.kind == "openai":
            body["model"] = cfg.model
        if cfg.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = 1  # llama-cpp-python returns none without it; OpenAI and Azure accept it
        return body

    async def _attempt(
        self, admitted: tuple[Route, Permit], messages: Sequence[dict[str, Any]], schema: type[BaseModel],
        max_tokens: int, temperature: float, deadline: float, number: int,
    ) -> tuple[Attempt, LLMResult | None]:
        route, permit = admitted
        cfg, t0 = route.cfg, self._clock()
        budget = max(0.001, min(cfg.timeout_s, deadline - t0))
        status: int | None = None
        verdict: bool | None = None  # breaker outcome; None = no information (429, request rejected)
        used_tokens: int | None = None
        detail = ""
        result: LLMResult | None = None
        usage = Usage()
        outcome: Outcome
        try:
            try:
                async with asyncio.timeout(budget):
                    headers = await self._auth.headers(cfg)
                    assert self._http is not None
                    resp = await self._http.post(
                        cfg.url, json=self._body(cfg, messages, schema, max_tokens, temperature), headers=headers,
                        timeout=httpx.Timeout(budget, connect=min(budget, CONNECT_TIMEOUT_S)),
                    )
            except (TimeoutError, httpx.TimeoutException):
                outcome, verdict, detail = "timeout", False, f"no answer within {budget:.1f}s"
            except httpx.TransportError as e:
                outcome, verdict, detail = "connect_error", False, type(e).__name__
            except AuthError as e:
                outcome, verdict, detail = "auth_error", False, str(e)
            else:
                status = resp.status_code
                now = self._clock()
                route.gate.observe_remaining(*parse_remaining(resp.headers), now)
                if status == 429:
                    wait = parse_retry_after(resp.headers)
                    wait = max(MIN_COOLDOWN_S, self.pool.default_cooldown_s if wait is None else wait)
                    route.gate.cool_down(wait, now)
                    outcome, used_tokens, detail = "throttled", 0, f"retry after {wait:.2f}s"
                elif status >= 500 or status == 408:
                    outcome, verdict, detail = "error_5xx", False, _error_code(resp)
                elif status != 200:
                    outcome, detail = "rejected", _error_code(resp)
                    verdict = False if status in BREAKER_STATUSES else None
                else:
                    outcome, detail, result, usage = self._read(cfg, resp, schema)
                    verdict = outcome != "error_5xx"
                    used_tokens = (usage.prompt_tokens + usage.completion_tokens) or None  # 0: not reported
        finally:
            now = self._clock()
            route.gate.release(permit, used_tokens, now)
            if verdict is None:
                route.breaker.abandon()
            elif route.breaker.record(verdict, now):
                route.stats.breaker_trips += 1
                log.warning("llm.breaker_open backend=%s", cfg.name)
            self._dispatch()
        latency = now - t0
        if outcome == "ok":
            route.latency_s = latency if not route.latency_s else route.latency_s + (latency - route.latency_s) * 0.1
        route.stats.count(outcome)
        log_attempt(backend=cfg.name, outcome=outcome, status=status, latency_s=latency, attempt=number,
                    prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)
        return Attempt(cfg.name, outcome, status, round(latency, 3), detail), result

    def _read(
        self, cfg: BackendConfig, resp: httpx.Response, schema: type[BaseModel]
    ) -> tuple[Outcome, str, LLMResult | None, Usage]:
        """A 200 reply: its usage, and the validated output or why it is invalid."""
        try:
            body = resp.json()
            choice = body["choices"][0]
            content = choice["message"].get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return "error_5xx", "200 with a body that is not a chat completion", None, Usage()
        raw_usage = body.get("usage") or {}
        usage = Usage(
            prompt_tokens=int(raw_usage.get("prompt_tokens") or 0),
            completion_tokens=int(raw_usage.get("completion_tokens") or 0),
        )
        try:
            parsed = parse_reply(content, schema)
        except InvalidOutput as e:
            finish = choice.get("finish_reason")
            return "invalid_output", str(e) + (f"; finish_reason={finish}" if finish != "stop" else ""), None, usage
        result = LLMResult(
            parsed=parsed, backend=cfg.name, model=str(body.get("model") or cfg.model), latency_s=0.0, usage=usage,
            attempts=0, logprob_mean=_logprob_mean(choice),
        )
        return "ok", "", result, usage
