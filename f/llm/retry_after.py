"""How long a throttled backend asks us to wait, and how much budget it says is left.

Azure OpenAI sends `retry-after-ms` (milliseconds) and `Retry-After` (seconds); RFC 9110 also
allows `Retry-After` as an HTTP date. The millisecond header wins because it is more precise.
"""

import math
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER_S = 300.0


def _number(value: str) -> float | None:
    try:
        n = float(value.strip())
    except ValueError:
        return None
    return n if math.isfinite(n) and n >= 0 else None


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from `now` (epoch seconds), or None when no usable header is present.

    `headers` must be case-insensitive (httpx.Headers, multidict); values are clamped to
    [0, MAX_RETRY_AFTER_S] so a broken server cannot park a backend for a day.
    """
    ms = headers.get("retry-after-ms") or headers.get("x-ms-retry-after-ms")
    if ms is not None and (n := _number(ms)) is not None:
        return min(n / 1000.0, MAX_RETRY_AFTER_S)
    value = headers.get("retry-after")
    if value is None:
        return None
    if (n := _number(value)) is not None:
        return min(n, MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    now = time.time() if now is None else now
    return min(max(0.0, when.timestamp() - now), MAX_RETRY_AFTER_S)


def parse_remaining(headers: Mapping[str, str]) -> tuple[int | None, int | None]:
    """(`x-ratelimit-remaining-requests`, `x-ratelimit-remaining-tokens`), None where absent or junk."""

    def one(name: str) -> int | None:
        n = _number(headers.get(name) or "")
        return int(n) if n is not None else None

    return one("x-ratelimit-remaining-requests"), one("x-ratelimit-remaining-tokens")
