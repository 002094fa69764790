"""Every form of the throttling headers."""

from email.utils import formatdate

import httpx
import pytest

from f.llm.retry_after import MAX_RETRY_AFTER_S, parse_remaining, parse_retry_after

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after-ms": "1500"}, 1.5),
    ({"retry-after-ms": "250", "Retry-After": "7"}, 0.25),  # ms wins: more precise
    ({"x-ms-retry-after-ms": "40"}, 0.04),
    ({"Retry-After": "7"}, 7.0),
    ({"Retry-After": "0.35"}, 0.35),
    ({"Retry-After": formatdate(NOW + 12, usegmt=True)}, 12.0),
    ({"Retry-After": formatdate(NOW - 30, usegmt=True)}, 0.0),  # a date in the past: go now
    ({"Retry-After": "86400"}, MAX_RETRY_AFTER_S),
    ({"retry-after-ms": "junk", "Retry-After": "2"}, 2.0),
    ({"Retry-After": "soon"}, None),
    ({"Retry-After": "-3"}, None),
    ({}, None),
])
def test_retry_after_forms(headers, expected):
    got = parse_retry_after(httpx.Headers(headers), now=NOW)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_remaining_headers():
    h = httpx.Headers({"x-ratelimit-remaining-requests": "12", "x-ratelimit-remaining-tokens": "3400"})
    assert parse_remaining(h) == (12, 3400)
    assert parse_remaining(httpx.Headers({"x-ratelimit-remaining-tokens": "n/a"})) == (None, None)
