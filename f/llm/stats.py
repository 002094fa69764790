"""Per-backend counters and the one log line per HTTP attempt (logger `f.llm`).

Log lines carry backend, outcome, status, latency, attempt number and token counts, as text
and as `extra` fields for structured handlers. Never prompt text, replies or keys.
"""

import logging
from dataclasses import asdict, dataclass
from typing import Literal

log = logging.getLogger("f.llm")

Outcome = Literal[
    "ok", "throttled", "error_5xx", "timeout", "connect_error", "rejected", "invalid_output", "auth_error"
]


@dataclass
class BackendStats:
    calls: int = 0
    ok: int = 0
    throttled_429: int = 0
    errors_5xx: int = 0
    timeouts: int = 0
    connect_errors: int = 0
    invalid_outputs: int = 0
    rejected_4xx: int = 0
    auth_errors: int = 0
    breaker_trips: int = 0

    def count(self, outcome: Outcome) -> None:
        self.calls += 1
        field = {
            "ok": "ok", "throttled": "throttled_429", "error_5xx": "errors_5xx", "timeout": "timeouts",
            "connect_error": "connect_errors", "invalid_output": "invalid_outputs", "rejected": "rejected_4xx",
            "auth_error": "auth_errors",
        }[outcome]
        setattr(self, field, getattr(self, field) + 1)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def log_attempt(
    *, backend: str, outcome: Outcome, status: int | None, latency_s: float, attempt: int,
    prompt_tokens: int | None, completion_tokens: int | None,
) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    fields = {
        "backend": backend, "outcome": outcome, "status": status, "latency_ms": round(latency_s * 1000),
        "attempt": attempt, "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
    }
    log.info("llm.attempt " + " ".join(f"{k}={v}" for k, v in fields.items()), extra={"llm": fields})
