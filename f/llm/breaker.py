"""Circuit breaker per backend, for 5xx, timeouts and connection errors (never for 429).

closed --(N consecutive failures, or failure rate over a window)--> open
open --(cool-off elapsed)--> half-open: one probe at a time
half-open --probe ok--> closed;  --probe failed--> open again, cool-off doubled (capped)

Isolated 5xx do not trip it: a backend at 2% errors stays in rotation (one that is ejected for
10 s on any 5xx loses most of its capacity). `Breaker` is the protocol the client uses, so the
state can later live in a shared store.
"""

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal, Protocol

from f.llm.pool import BreakerConfig

State = Literal["closed", "open", "half_open"]


class Breaker(Protocol):
    def wait_s(self, now: float) -> float:
        """0 if a request may go now; else seconds until it may (inf = wait for the probe's result)."""
        ...

    def enter(self, now: float) -> None:
        """A request was admitted (in half-open: this is the probe)."""
        ...

    def record(self, ok: bool, now: float) -> bool:
        """Record an outcome; True if this outcome opened the breaker."""
        ...

    def abandon(self) -> None:
        """An admitted request ended with no verdict (e.g. 429): free the probe slot."""
        ...

    @property
    def state(self) -> State: ...


@dataclass
class LocalBreaker:
    cfg: BreakerConfig = field(default_factory=BreakerConfig)
    _state: State = "closed"
    _consecutive: int = 0
    _outcomes: deque[bool] = field(default_factory=deque)
    _opened_at: float = -math.inf
    _cooloff: float = 0.0
    _probing: bool = False

    def __post_init__(self) -> None:
        self._cooloff = self.cfg.cooloff_s

    @property
    def state(self) -> State:
        return self._state

    @property
    def reopen_at(self) -> float:
        """When an open breaker lets a probe through (meaningful while open)."""
        return self._opened_at + self._cooloff

    def force_open(self, until: float, now: float) -> bool:
        """Another process found this backend broken until `until` (this clock): stay away as if our own
        breaker had opened, then probe. `until <= now` (the other process's probe succeeded) cuts an open
        state short. True if the state changed."""
        self._tick(now)
        if until > now and (self._state == "closed" or (self._state == "open" and until > self.reopen_at)):
            self._state, self._opened_at, self._cooloff, self._probing = "open", now, until - now, False
            return True
        if until <= now and self._state == "open":
            self._state, self._probing = "half_open", False
            return True
        return False

    def _tick(self, now: float) -> None:
        if self._state == "open" and now >= self._opened_at + self._cooloff:
            self._state, self._probing = "half_open", False

    def wait_s(self, now: float) -> float:
        self._tick(now)
        if self._state == "open":
            return self._opened_at + self._cooloff - now
        if self._state == "half_open" and self._probing:
            return math.inf
        return 0.0

    def enter(self, now: float) -> None:
        self._tick(now)
        if self._state == "half_open":
            self._probing = True

    def abandon(self) -> None:
        self._probing = False

    def record(self, ok: bool, now: float) -> bool:
        self._tick(now)
        if self._state == "half_open":
            self._probing = False
            if ok:
                self._close()
                return False
            self._cooloff = min(self._cooloff * 2, self.cfg.max_cooloff_s)
            return self._open(now)
        if self._state == "open":  # a straggler admitted before the trip: no new information
            return False
        self._outcomes.append(ok)
        if len(self._outcomes) > self.cfg.window:
            self._outcomes.popleft()
        self._consecutive = 0 if ok else self._consecutive + 1
        failures = self._outcomes.count(False)
        seen = len(self._outcomes)
        rate_trip = seen >= self.cfg.min_calls and failures / seen >= self.cfg.failure_rate
        if self._consecutive >= self.cfg.consecutive_failures or rate_trip:
            return self._open(now)
        return False

    def _open(self, now: float) -> bool:
        self._state, self._opened_at, self._probing = "open", now, False
        return True

    def _close(self) -> None:
        self._state, self._consecutive, self._cooloff = "closed", 0, self.cfg.cooloff_s
        self._outcomes.clear()
