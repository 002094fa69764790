"""Per-backend admission: an in-flight cap, an RPM bucket, a TPM bucket and a 429 cooldown.

Why our own token bucket rather than aiolimiter: routing must ask every backend "could you take
this request *now*, and if not, when?" without blocking, and admission must be corrected after
the fact: refund the estimate when `usage` comes back smaller, charge more when it is larger, and
lower the level when the server's `x-ratelimit-remaining-*` headers say we are over budget.
`aiolimiter.AsyncLimiter` has `has_capacity()` and weighted `acquire()`, but no refund, no
resync and no "time until" query, and acquiring blocks. The bucket below is ~30 lines and
synchronous, so check-and-take is atomic on the event loop.

The `Gate` protocol is all the client uses, so a store shared across Windmill jobs (blob with a
TTL, Redis) can implement it later without touching routing.
"""

import math
from dataclasses import dataclass, field
from typing import Protocol

from f.llm.pool import BackendConfig

BURST_S = 10.0
"""Bucket depth in seconds of rate: Azure evaluates RPM/TPM over short (1-10 s) windows, not a minute."""


@dataclass
class TokenBucket:
    rate: float
    """units added per second"""
    capacity: float
    level: float
    stamp: float

    @classmethod
    def per_minute(cls, per_min: int, now: float, burst_s: float = BURST_S) -> "TokenBucket":
        capacity = max(1.0, per_min * burst_s / 60.0)
        return cls(rate=per_min / 60.0, capacity=capacity, level=capacity, stamp=now)

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_s(self, amount: float, now: float) -> float:
        """Seconds until `amount` can be taken. A request larger than the bucket waits for a full
        bucket and then drives the level negative (debt), rather than never being admitted."""
        self._refill(now)
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def take(self, amount: float, now: float) -> None:
        self._refill(now)
        self.level -= amount

    def adjust(self, delta: float, now: float) -> None:
        """Give back (delta > 0) or charge extra (delta < 0) after the real cost is known."""
        self._refill(now)
        self.level = min(self.capacity, self.level + delta)

    def cap_at(self, remaining: float, now: float) -> None:
        """The server says only `remaining` is left: never believe we have more than that."""
        self._refill(now)
        self.level = min(self.level, remaining)

    def sync_to(self, remaining: float, now: float) -> None:
        """The server says `remaining` is left in its window: believe it, up as well as down. A sliding
        window frees slots as fast as it was filled, which a fixed refill rate cannot follow."""
        self._refill(now)
        self.level = min(self.capacity, remaining)


@dataclass(frozen=True)
class Permit:
    tokens: int


class Gate(Protocol):
    """What routing needs from one backend's admission state."""

    def wait_s(self, tokens: int, now: float) -> float:
        """0 if a request of `tokens` can be admitted now; else seconds until it might (inf = unknown)."""
        ...

    def try_admit(self, tokens: int, now: float) -> Permit | None: ...

    def release(self, permit: Permit, used_tokens: int | None, now: float) -> None:
        """The request is over; `used_tokens` from `usage` corrects the TPM charge (0 = refund all)."""
        ...

    def cool_down(self, seconds: float, now: float) -> None: ...

    def observe_remaining(self, requests: int | None, tokens: int | None, now: float) -> None: ...

    def snapshot(self, now: float) -> dict[str, float | int | None]: ...


@dataclass
class LocalAdmission:
    """In-process `Gate`."""

    max_inflight: int
    rpm: TokenBucket | None
    tpm: TokenBucket | None
    inflight: int = 0
    cooldown_until: float = field(default=-math.inf)

    @classmethod
    def for_backend(cls, cfg: BackendConfig, now: float) -> "LocalAdmission":
        return cls(
            max_inflight=cfg.max_inflight,
            rpm=TokenBucket.per_minute(cfg.rpm, now) if cfg.rpm else None,
            tpm=TokenBucket.per_minute(cfg.tpm, now) if cfg.tpm else None,
        )

    def wait_s(self, tokens: int, now: float) -> float:
        if self.inflight >= self.max_inflight:
            return math.inf  # freed by a release, which wakes the waiters
        waits = [self.cooldown_until - now, 0.0]
        if self.rpm:
            waits.append(self.rpm.wait_s(1, now))
        if self.tpm:
            waits.append(self.tpm.wait_s(tokens, now))
        return max(waits)

    def try_admit(self, tokens: int, now: float) -> Permit | None:
        if self.wait_s(tokens, now) > 0:
            return None
        self.inflight += 1
        if self.rpm:
            self.rpm.take(1, now)
        if self.tpm:
            self.tpm.take(tokens, now)
        return Permit(tokens)

    def release(self, permit: Permit, used_tokens: int | None, now: float) -> None:
        self.inflight -= 1
        if self.tpm and used_tokens is not None:
            self.tpm.adjust(permit.tokens - used_tokens, now)

    def cool_down(self, seconds: float, now: float) -> None:
        """A 429: nothing until the server's retry time, then one request, then requests paced at the rate, not a burst of everything that refilled meanwhile (which would meet a window that frees
        slots only as fast as it filled them, and draw a 429 storm)."""
        self.cooldown_until = max(self.cooldown_until, now + seconds)
        if self.rpm:
            self.rpm.take(max(0.0, self.rpm.level - 1), now)  # one request when the server said; then the rate
            self.rpm.stamp = max(self.rpm.stamp, self.cooldown_until)

    def observe_remaining(self, requests: int | None, tokens: int | None, now: float) -> None:
        """Resync from `x-ratelimit-remaining-*`. Requests: set to what the server has left, less what we
        have in flight besides the request this answer is for (the server may not have counted them yet);
        not while cooling down (a 429's own count is spent already). Tokens: lowered only."""
        others = max(0, self.inflight - 1)
        if self.rpm and requests is not None and now >= self.cooldown_until:
            self.rpm.sync_to(max(0, requests - others), now)
        if self.tpm and tokens is not None:
            self.tpm.cap_at(tokens, now)  # down only: which permit this answer settles is not known here

    def snapshot(self, now: float) -> dict[str, float | int | None]:
        for bucket in (self.rpm, self.tpm):
            if bucket:
                bucket.adjust(0, now)  # refill to now
        return {
            "inflight": self.inflight,
            "cooldown_s": round(max(0.0, self.cooldown_until - now), 3),
            "rpm_level": round(self.rpm.level, 1) if self.rpm else None,
            "tpm_level": round(self.tpm.level, 1) if self.tpm else None,
        }
