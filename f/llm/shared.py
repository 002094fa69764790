"""Admission and breaker state shared by every process that uses one pool: the Windmill jobs of a flow.

Windmill runs each job in its own process, maybe on another replica; the store is the only thing they
share. So each backend gets a small *board* blob, `{prefix}{pool_key}/{backend}.json`:

    {"rpm": {"level": 41.5, "at": <epoch s>}, "tpm": {...}, "cooldown_until": <epoch s>, "open_until": <epoch s>}

- **Budget: leases from a shared token bucket.** The board holds the flow's RPM and TPM buckets
  (refilled at the backend's rate, `burst_s` deep). A process takes a *lease* out of them with one
  ETag compare-and-swap: about `lease_s` seconds of its own recent demand, never more than half of
  what is left, so siblings get their turn. It spends the lease locally, with no store round-trip per
  call, and leases again in the background when it is half spent. Leased budget not used within
  `lease_ttl_s` is dropped, and what is left is given back when the client closes. So P processes
  together send at most `burst + rate * (t + lease_ttl_s)` in any `t` seconds, whatever P is, and a
  busy process gets more of the budget than an idle one.
- **Cooldowns and breakers are published on transitions.** A 429 writes `cooldown_until` (and empties
  the shared buckets: the server says the budget is spent); a breaker that opens writes `open_until`;
  a successful half-open probe cuts it short. Every sync reads them back, and a board not synced for
  `refresh_s` is re-read, so a sibling learns within about a second while it is using the backend.
- **Times on the board are epoch seconds** (replicas share no monotonic clock): clock skew between
  replicas shifts cooldowns and refills by that skew.
- **Failure is on the safe side.** A lost CAS is retried with jitter; a process that dies holding a
  lease takes at most that lease with it; a store that cannot be reached leaves each process
  `1/fallback_processes` of the budget until it can.

Limits: `max_inflight` stays per process; after a shared breaker opens, each process sends its own
half-open probe.
"""

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import random
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from f.core.storage import Conflict, NotFound
from f.llm.admission import Permit
from f.llm.breaker import LocalBreaker
from f.llm.pool import BackendConfig, BreakerConfig, LLMPool

log = logging.getLogger("f.llm")

SYNC_WAIT_S = 0.02
"""what a gate with no budget left reports while its lease is being fetched"""
MAX_CAS_TRIES = 6
DEMAND_WINDOW_S = 2.0


class BoardStore(Protocol):
    """What the board needs from the store (f.core.storage.BlobStore has it)."""

    async def read_with_etag(self, path: str) -> tuple[bytes, str]: ...

    async def create(self, path: str, data: bytes | str) -> bool: ...

    async def replace(self, path: str, data: bytes | str, etag: str) -> str: ...


def pool_key(pool: LLMPool) -> str:
    """Jobs configured with the same backends share boards; another pool gets its own."""
    ident = json.dumps([[b.name, b.url, b.model] for b in pool.backends])
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def _cap(per_min: int | None, burst_s: float) -> float:
    return max(1.0, (per_min or 0) * burst_s / 60.0)


def _refill(doc: dict[str, Any], key: str, per_min: int | None, burst_s: float, wall: float) -> dict[str, float] | None:
    """The shared bucket `key` of a board, refilled to `wall` (created full)."""
    if not per_min:
        return None
    cap = _cap(per_min, burst_s)
    bucket = doc.get(key) or {"level": cap, "at": wall}
    level, at = float(bucket["level"]), float(bucket["at"])
    bucket = {"level": min(cap, level + max(0.0, wall - at) * per_min / 60.0), "at": max(at, wall)}
    doc[key] = bucket
    return bucket


@dataclass
class _Pending:
    """Transitions and corrections not yet written to the board."""

    cooldown_until: float = 0.0  # wall
    open_until: float = 0.0  # wall
    closed: bool = False
    spent: bool = False  # a 429: empty the shared buckets
    requests_left: float = math.inf  # the server's x-ratelimit-remaining-*
    tokens_left: float = math.inf
    give_back: tuple[float, float] = (0.0, 0.0)  # unused lease (requests, tokens); negative = debt

    def urgent(self) -> bool:
        return bool(self.cooldown_until or self.open_until or self.closed)

    def any(self) -> bool:
        """Worth a write (the server's remaining counts are not: they ride along with the next write)."""
        return bool(self.urgent() or self.spent or self.give_back != (0.0, 0.0))


class SharedGate:
    """A `Gate` that spends budget leased from the backend's board."""

    def __init__(self, cfg: BackendConfig, board: "Board") -> None:
        self.cfg, self.board = cfg, board
        self.inflight = 0
        self.cooldown_until = -math.inf
        self.requests = 0.0  # leased budget in hand
        self.tokens = 0.0
        self.lease_until = -math.inf
        self.empty_until = -math.inf  # the board had nothing to lease until then
        self.synced_at = -math.inf
        self.tokens_per_call = 1000.0  # running estimate, sizes token leases
        self.admits: deque[float] = deque()
        self.pending = _Pending()

    @property
    def leased(self) -> bool:
        return bool(self.cfg.rpm or self.cfg.tpm)

    def _expire(self, now: float) -> None:
        """A lease not spent in time is no longer ours to spend: it goes back at the next sync (giving
        budget back is always safe); debt stays, to be settled."""
        if now >= self.lease_until and (self.requests > 0 or self.tokens > 0):
            back = self.pending.give_back
            self.pending.give_back = (back[0] + max(0.0, self.requests), back[1] + max(0.0, self.tokens))
            self.requests, self.tokens = min(self.requests, 0.0), min(self.tokens, 0.0)

    def target(self, now: float) -> tuple[float, float]:
        """Lease size: about `lease_s` of recent demand, at least enough to fill the in-flight cap."""
        while self.admits and self.admits[0] < now - DEMAND_WINDOW_S:
            self.admits.popleft()
        calls = max(float(self.cfg.max_inflight), math.ceil(len(self.admits) / DEMAND_WINDOW_S
                                                            * self.board.cfg.lease_s * 1.25))
        return calls, calls * self.tokens_per_call

    def _short(self, tokens: int) -> bool:
        need_tokens = min(tokens, _cap(self.cfg.tpm, self.board.cfg.burst_s)) if self.cfg.tpm else 0
        return bool((self.cfg.rpm and self.requests < 1) or (self.cfg.tpm and self.tokens < need_tokens))

    def wait_s(self, tokens: int, now: float) -> float:
        if self.inflight >= self.cfg.max_inflight:
            return math.inf
        self.board.maybe_refresh(self, now)
        cooling = self.cooldown_until - now
        if not self.leased:
            return max(0.0, cooling)
        self._expire(now)
        if not self._short(tokens):
            if self._low(now):
                self.board.request_sync(self, now)  # prefetch: lease again before running dry
            return max(0.0, cooling)
        self.board.request_sync(self, now)
        return max(cooling, self.empty_until - now, SYNC_WAIT_S)

    def _low(self, now: float) -> bool:
        want_requests, want_tokens = self.target(now)
        return bool((self.cfg.rpm and self.requests < want_requests / 2)
                    or (self.cfg.tpm and self.tokens < want_tokens / 2))

    def try_admit(self, tokens: int, now: float) -> Permit | None:
        if self.wait_s(tokens, now) > 0:
            return None
        self.inflight += 1
        self.admits.append(now)
        self.tokens_per_call += (tokens - self.tokens_per_call) * 0.2
        if self.cfg.rpm:
            self.requests -= 1
        if self.cfg.tpm:
            self.tokens -= tokens
        return Permit(tokens)

    def release(self, permit: Permit, used_tokens: int | None, now: float) -> None:
        self.inflight -= 1
        if self.cfg.tpm and used_tokens is not None:
            self.tokens += permit.tokens - used_tokens  # a refund expires with the lease; extra use is debt

    def cool_down(self, seconds: float, now: float) -> None:
        self.cooldown_until = max(self.cooldown_until, now + seconds)
        self.pending.cooldown_until = max(self.pending.cooldown_until, self.board.wall(self.cooldown_until))
        self.pending.spent = True
        self.requests, self.tokens = min(self.requests, 0.0), min(self.tokens, 0.0)
        self.board.request_sync(self, now, urgent=True)

    def observe_remaining(self, requests: int | None, tokens: int | None, now: float) -> None:
        if self.cfg.rpm and requests is not None:
            self.requests = min(self.requests, requests)
            self.pending.requests_left = min(self.pending.requests_left, requests)
        if self.cfg.tpm and tokens is not None:
            self.tokens = min(self.tokens, tokens)
            self.pending.tokens_left = min(self.pending.tokens_left, tokens)

    def snapshot(self, now: float) -> dict[str, float | int | None]:
        self._expire(now)
        return {
            "inflight": self.inflight,
            "cooldown_s": round(max(0.0, self.cooldown_until - now), 3),
            "rpm_level": round(self.requests, 1) if self.cfg.rpm else None,
            "tpm_level": round(self.tokens, 1) if self.cfg.tpm else None,
            "shared": True,
        }

    # -- the board's side ------------------------------------------------------------------

    def apply_lease(self, requests: float, tokens: float, empty_wait_s: float, now: float) -> None:
        self._expire(now)
        self.requests += requests
        self.tokens += tokens
        if requests or tokens:
            self.lease_until = now + self.board.cfg.lease_ttl_s
        self.empty_until = now + empty_wait_s
        self.synced_at = now

    def apply_cooldown(self, until: float) -> None:
        self.cooldown_until = max(self.cooldown_until, until)


@dataclass
class SharedBreaker(LocalBreaker):
    """The local breaker, whose transitions are published to the board and whose siblings' are applied."""

    gate: SharedGate | None = field(default=None, repr=False)

    def record(self, ok: bool, now: float) -> bool:
        was = self.state
        opened = super().record(ok, now)
        if self.gate is not None:
            if opened:
                self.gate.pending.open_until = self.gate.board.wall(self.reopen_at)
                self.gate.pending.closed = False
                self.gate.board.request_sync(self.gate, now, urgent=True)
            elif was == "half_open" and self.state == "closed":
                self.gate.pending.closed, self.gate.pending.open_until = True, 0.0
                self.gate.board.request_sync(self.gate, now, urgent=True)
        return opened


class Board:
    """The boards of one pool, for one client: builds its gates and breakers, and syncs them in the background."""

    def __init__(
        self, store: BoardStore, pool: LLMPool, *, clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[], None] = lambda: None, process_id: str | None = None,
    ) -> None:
        self.store, self.pool, self.cfg = store, pool, pool.shared
        self.clock, self.on_change = clock, on_change
        self.process_id = process_id or uuid.uuid4().hex[:12]
        self._offset = time.time() - clock()
        self._prefix = f"{self.cfg.prefix}{pool_key(pool)}/"
        self.gates: dict[str, SharedGate] = {}
        self.breakers: dict[str, SharedBreaker] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._not_before: dict[str, float] = {}
        self._degraded: set[str] = set()
        self.syncs = 0
        self.conflicts = 0

    def wall(self, mono: float) -> float:
        return mono + self._offset

    def mono(self, wall: float) -> float:
        return wall - self._offset

    def path(self, name: str) -> str:
        return f"{self._prefix}{name}.json"

    # factories for LLMClient
    def gate(self, cfg: BackendConfig, _now: float) -> SharedGate:
        gate = self.gates[cfg.name] = SharedGate(cfg, self)
        if cfg.name in self.breakers:
            self.breakers[cfg.name].gate = gate
        return gate

    def breaker(self, cfg: BackendConfig, breaker_cfg: BreakerConfig) -> SharedBreaker:
        breaker = self.breakers[cfg.name] = SharedBreaker(breaker_cfg, gate=self.gates.get(cfg.name))
        return breaker

    async def start(self) -> None:
        """First lease and board state of every backend: one store round-trip each, concurrently."""
        now = self.clock()
        await asyncio.gather(*(self._sync(g) for g in self.gates.values() if g.synced_at < now))

    async def close(self, timeout_s: float = 5.0) -> None:
        """Give back the unused leases and publish what is pending; stop the background syncs."""
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        now = self.clock()
        for gate in self.gates.values():
            gate.lease_until = -math.inf
            gate._expire(now)
        dirty = [g for g in self.gates.values() if g.pending.any() and g.cfg.name not in self._degraded]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await asyncio.gather(*(self._sync(g, lease=False) for g in dirty))

    def request_sync(self, gate: SharedGate, now: float, urgent: bool = False) -> None:
        name = gate.cfg.name
        task = self._tasks.get(name)
        if task is not None and not task.done():
            return
        if not urgent and now < self._not_before.get(name, -math.inf):
            return
        self._tasks[name] = asyncio.get_running_loop().create_task(self._sync(gate))

    def maybe_refresh(self, gate: SharedGate, now: float) -> None:
        if now - gate.synced_at >= self.cfg.refresh_s:
            self.request_sync(gate, now)

    async def _sync(self, gate: SharedGate, lease: bool = True) -> None:
        """One compare-and-swap on the backend's board: settle, publish, lease, read back."""
        name = gate.cfg.name
        try:
            attempt = 0
            while attempt < MAX_CAS_TRIES:
                try:
                    await self._cas(gate, lease)
                    if name in self._degraded:
                        self._degraded.discard(name)
                        log.warning("llm.board_restored backend=%s", name)
                    if not gate.pending.urgent():  # a transition that came in meanwhile goes out now
                        return
                    attempt = 0
                except Conflict:
                    attempt += 1
                    self.conflicts += 1
                    await asyncio.sleep(random.uniform(0, 0.01 * 2 ** attempt))
            self._not_before[name] = self.clock() + SYNC_WAIT_S  # heavy contention: let others through
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001  (store unreachable: a conservative local share until it is back)
            if name not in self._degraded:
                self._degraded.add(name)
                log.warning("llm.board_unavailable backend=%s error=%s: using 1/%d of its budget", name,
                            type(e).__name__, self.cfg.fallback_processes)
            now = self.clock()
            share = self.cfg.lease_s / 60.0 / self.cfg.fallback_processes
            gate.apply_lease((gate.cfg.rpm or 0) * share, (gate.cfg.tpm or 0) * share, 0.0, now)
            self._not_before[name] = now + self.cfg.lease_s
        finally:
            self.on_change()

    async def _cas(self, gate: SharedGate, lease: bool) -> None:
        cfg, path = gate.cfg, self.path(gate.cfg.name)
        try:
            raw, etag = await self.store.read_with_etag(path)
            doc: dict[str, Any] = json.loads(raw)
        except NotFound:
            doc, etag = {}, None
        now = self.clock()
        wall = self.wall(now)
        pending = gate.pending
        gate.pending = _Pending()  # transitions from here on go into the next sync
        try:
            rpm = _refill(doc, "rpm", cfg.rpm, self.cfg.burst_s, wall)
            tpm = _refill(doc, "tpm", cfg.tpm, self.cfg.burst_s, wall)
            for bucket, per_min, back, left in ((rpm, cfg.rpm, pending.give_back[0], pending.requests_left),
                                                (tpm, cfg.tpm, pending.give_back[1], pending.tokens_left)):
                if bucket is not None:
                    floor = 0.0 if pending.spent else math.inf  # a 429: the server says the budget is spent
                    bucket["level"] = min(_cap(per_min, self.cfg.burst_s), bucket["level"] + back, left, floor)
            # settle debt (spent beyond the lease) before leasing more
            debt_r, debt_t = min(gate.requests, 0.0), min(gate.tokens, 0.0)
            if rpm is not None:
                rpm["level"] += debt_r
            if tpm is not None:
                tpm["level"] += debt_t
            doc["cooldown_until"] = max(float(doc.get("cooldown_until", 0.0)), pending.cooldown_until)
            if pending.open_until:
                doc["open_until"] = max(float(doc.get("open_until", 0.0)), pending.open_until)
            elif pending.closed:
                doc["open_until"] = min(float(doc.get("open_until", 0.0)), wall)
            want_r, want_t = gate.target(now) if lease else (0.0, 0.0)
            grant_r = grant_t = 0.0
            wait = 0.0
            if lease and gate.leased:
                if rpm is not None and gate.requests - debt_r < want_r / 2:
                    grant_r = float(math.floor(min(want_r, max(1.0, rpm["level"] / 2)))) if rpm["level"] >= 1 else 0.0
                    rpm["level"] -= grant_r
                    if not grant_r:
                        wait = (1 - rpm["level"]) * 60.0 / (cfg.rpm or 1)
                if tpm is not None and gate.tokens - debt_t < want_t / 2:
                    need = min(gate.tokens_per_call, _cap(cfg.tpm, self.cfg.burst_s))
                    grant_t = min(want_t, max(need, tpm["level"] / 2)) if tpm["level"] >= need else 0.0
                    tpm["level"] -= grant_t
                    if not grant_t:
                        wait = max(wait, (need - tpm["level"]) * 60.0 / (cfg.tpm or 1))
            changed = (grant_r or grant_t or debt_r or debt_t or pending.any() or etag is None)
            if changed:
                doc["by"], doc["at"] = self.process_id, round(wall, 3)
                data = json.dumps(doc)
                if etag is None:
                    if not await self.store.create(path, data):
                        raise Conflict(path)
                else:
                    await self.store.replace(path, data, etag)
        except BaseException:
            gate.pending = _merge(pending, gate.pending)
            raise
        self.syncs += 1
        now = self.clock()
        gate.requests -= debt_r
        gate.tokens -= debt_t
        gate.apply_lease(grant_r, grant_t, wait, now)
        gate.apply_cooldown(self.mono(float(doc.get("cooldown_until", 0.0))))
        breaker = self.breakers.get(cfg.name)
        open_until = float(doc.get("open_until", 0.0))
        if (breaker is not None and open_until and not gate.pending.open_until
                and breaker.force_open(self.mono(open_until), now) and breaker.state == "open"):
            log.info("llm.breaker_open_shared backend=%s for_s=%.1f", cfg.name, open_until - wall)
        # Next sync: soon, but not before the board has something to lease (jittered, so that
        # siblings waiting for the same refill do not all come at once).
        self._not_before[cfg.name] = max(now + min(self.cfg.lease_s / 4, 0.25),
                                         gate.empty_until + random.uniform(0, 0.05))


def _merge(old: _Pending, new: _Pending) -> _Pending:
    """Pending transitions of a failed sync, combined with those that arrived meanwhile."""
    return _Pending(
        cooldown_until=max(old.cooldown_until, new.cooldown_until),
        open_until=new.open_until or (0.0 if new.closed else old.open_until),
        closed=new.closed or (old.closed and not new.open_until),
        spent=old.spent or new.spent,
        requests_left=min(old.requests_left, new.requests_left),
        tokens_left=min(old.tokens_left, new.tokens_left),
        give_back=(old.give_back[0] + new.give_back[0], old.give_back[1] + new.give_back[1]),
    )
