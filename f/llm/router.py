"""Which backend takes the next attempt: API Management's priority-pool semantics, on the client.

1. Candidates: every backend that could answer before the deadline (its wait plus its usual
   latency fit in what is left), except the one that just
   failed this call. That one stays only if no other backend can take the request within
   REVISIT_GRACE_S: waiting 9 s for a cooling tier-1 backend after an isolated 5xx on an idle
   one costs more than retrying there (its breaker still guards against a real outage). Going back
   waits until `exclude_until`, a short backoff, so a backend failing fast (a 503 storm) does not
   eat the call's attempts before its breaker opens.
2. Ready: candidates that can admit now (in-flight cap, RPM/TPM buckets, no 429 cooldown,
   breaker closed or a free half-open probe slot).
3. Prefer ready backends outside `avoid` (the caller's set plus those already tried in this
   call); fall back to avoided ones only if no other is ready.
4. Take the lowest priority number among them (tier 1 first), weighted random within the tier.
   So tier 2 sees traffic only while every tier-1 backend is full, cooling down or broken.
"""

import math
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from f.llm.admission import Gate
from f.llm.breaker import Breaker
from f.llm.pool import BackendConfig
from f.llm.stats import BackendStats

REVISIT_GRACE_S = 1.0


@dataclass
class Route:
    """A backend at run time: its config and its admission, breaker and counters."""

    cfg: BackendConfig
    gate: Gate
    breaker: Breaker
    stats: BackendStats
    latency_s: float = 0.0
    """running mean of successful attempts (0: none yet)"""

    @property
    def name(self) -> str:
        return self.cfg.name

    def wait_s(self, tokens: int, now: float) -> float:
        return max(self.breaker.wait_s(now), self.gate.wait_s(tokens, now))


@dataclass(frozen=True)
class Choice:
    route: Route | None
    wait_s: float
    """0 with a route; else how long until one may be ready (inf: until some request finishes)."""


def pick(
    routes: Sequence[Route], tokens: int, now: float, deadline: float, *,
    avoid: Collection[str] = (), shun: Collection[str] = (), exclude: str | None = None,
    exclude_until: float = -math.inf, rng: random.Random,
) -> Choice:
    """`shun`: backends not to take now at all (a chunk's other samples are on them, and the call may still
    wait for another); `avoid`: backends to take only when no other is ready."""
    routes = [r for r in routes if r.name not in shun]
    if not routes:
        return Choice(None, math.inf)
    waits = {r.name: r.wait_s(tokens, now) for r in routes}
    if exclude in waits:  # going back to the backend that just failed: not before exclude_until
        waits[exclude] = max(waits[exclude], exclude_until - now)
    remaining = deadline - now

    def within(r: Route, horizon: float) -> bool:  # inf: full, frees when a request ends
        return waits[r.name] <= horizon or math.isinf(waits[r.name])

    # A backend can serve if its answer can still arrive in time: waiting for it plus its usual latency.
    serviceable = [r for r in routes if r.latency_s < remaining and within(r, remaining - r.latency_s)]
    others = [r for r in serviceable if r.name != exclude]
    candidates = others if any(within(r, min(remaining, REVISIT_GRACE_S)) for r in others) else serviceable
    if not candidates:
        return Choice(None, min(waits.values()))
    ready = [r for r in candidates if waits[r.name] <= 0]
    group = [r for r in ready if r.name not in avoid] or ready
    if not group:
        return Choice(None, min(waits[r.name] for r in candidates))
    tier = min(r.cfg.priority for r in group)
    in_tier = [r for r in group if r.cfg.priority == tier]
    return Choice(rng.choices(in_tier, weights=[r.cfg.weight for r in in_tier])[0], 0.0)
