"""Token buckets, admission and the breaker, on a fake clock."""

import math

from f.llm.admission import LocalAdmission, TokenBucket
from f.llm.breaker import LocalBreaker
from f.llm.pool import BackendConfig, BreakerConfig


def backend(**kw) -> BackendConfig:
    return BackendConfig(name="b", kind="openai", base_url="http://h/v1", model="m", **kw)


def test_bucket_refills_at_rate_and_allows_one_oversized_request():
    b = TokenBucket.per_minute(600, now=0.0)  # 10/s, 100 deep (10 s burst)
    assert b.capacity == 100 and b.wait_s(100, 0.0) == 0
    b.take(100, 0.0)
    assert b.wait_s(1, 0.0) == 0.1
    assert b.wait_s(1, 0.1) == 0
    assert b.wait_s(5000, 0.1) > 0  # larger than the bucket: waits for a full bucket ...
    assert b.wait_s(5000, 10.0) == 0  # ... then goes, into debt
    b.take(5000, 10.0)
    assert b.level == -4900


def test_admission_caps_inflight_and_tokens():
    a = LocalAdmission.for_backend(backend(max_inflight=2, tpm=6000), now=0.0)  # 1000-token bucket
    p1 = a.try_admit(400, 0.0)
    p2 = a.try_admit(400, 0.0)
    assert p1 and p2 and a.try_admit(1, 0.0) is None and math.isinf(a.wait_s(1, 0.0))
    a.release(p1, used_tokens=100, now=0.0)  # usage says 100, not 400: 300 come back
    assert a.tpm.level == 1000 - 800 + 300
    assert a.try_admit(600, 0.0) is None  # 500 left
    assert a.wait_s(600, 0.0) == 1.0  # 100 tokens/s refill
    a.release(p2, used_tokens=900, now=0.0)  # more than estimated: charged extra
    assert a.tpm.level == 500 - 500


def test_admission_cooldown_and_server_resync():
    a = LocalAdmission.for_backend(backend(rpm=600, tpm=60_000), now=0.0)
    a.cool_down(2.5, now=0.0)
    assert a.wait_s(1, 1.0) == 1.5 and a.try_admit(1, 1.0) is None
    assert a.wait_s(1, 2.5) == 0
    a.observe_remaining(requests=0, tokens=None, now=2.5)  # the server says: no requests left
    assert a.try_admit(1, 2.5) is None and a.wait_s(1, 2.5) == 0.1


def test_breaker_opens_on_consecutive_failures_then_probes_and_closes():
    br = LocalBreaker(BreakerConfig(consecutive_failures=3, cooloff_s=5, max_cooloff_s=12))
    assert [br.record(False, 0.0) for _ in range(3)] == [False, False, True]
    assert br.state == "open" and br.wait_s(1.0) == 4.0
    assert br.wait_s(5.0) == 0 and br.state == "half_open"
    br.enter(5.0)  # the probe
    assert math.isinf(br.wait_s(5.0)), "one probe at a time"
    assert br.record(False, 6.0) is True and br.state == "open"  # failed probe: open, cool-off doubled
    assert br.wait_s(6.0 + 9.9) > 0 and br.wait_s(6.0 + 10.0) == 0
    br.enter(16.0)
    br.abandon()  # e.g. the probe got a 429: no verdict, slot freed
    assert br.wait_s(16.0) == 0
    br.enter(16.0)
    assert br.record(True, 16.5) is False and br.state == "closed"
    br.record(False, 17.0)
    br.record(False, 17.0)
    assert br.state == "closed", "consecutive count restarts after closing"


def test_breaker_failure_rate_and_isolated_errors():
    br = LocalBreaker(BreakerConfig(consecutive_failures=100, failure_rate=0.5, window=10, min_calls=10))
    for i in range(200):  # 2% errors, never consecutive: stays closed
        br.record(i % 50 != 0, float(i))
    assert br.state == "closed"
    for i in range(10):
        opened = br.record(i % 2 == 0, 300.0 + i)
    assert opened and br.state == "open"


def test_breaker_forced_open_by_a_sibling_then_probes_or_closes_early():
    br = LocalBreaker(BreakerConfig(cooloff_s=5, max_cooloff_s=10))
    assert br.force_open(until=30.0, now=10.0) and br.state == "open" and br.wait_s(10.0) == 20.0
    assert not br.force_open(until=20.0, now=11.0), "an earlier end does not shorten it"
    assert br.wait_s(30.0) == 0 and br.state == "half_open", "then one probe, as after our own trip"
    br.enter(30.0)
    assert br.record(True, 30.5) is False and br.state == "closed"
    br.force_open(until=60.0, now=40.0)
    assert br.force_open(until=41.0, now=41.0) and br.state == "half_open", "a sibling's probe succeeded"
