"""The client's own HTTP behaviour, with respx standing in for the backends."""

import asyncio
import json
import logging
import random
import time
from email.utils import formatdate

import httpx
import pytest
from llm_helpers import GOOD, MESSAGES, PROMPT_SECRET, Answer, Recorder, completion, entry, pool, throttle, url

from f.llm.client import LLMCallFailed, LLMClient

KEY = "sk-test-secret-0123456789"


async def call(client: LLMClient, **kw):
    return await client.complete_json(messages=MESSAGES, schema=Answer, max_tokens=50, **kw)


def slow(seconds: float, response: httpx.Response | None = None):
    async def step() -> httpx.Response:
        await asyncio.sleep(seconds)
        return response or completion()
    return step


# --- 429 -------------------------------------------------------------------------------------

async def test_429_fails_over_at_once_and_cools_the_backend(http_mock):
    a, b = Recorder(throttle(retry_after_ms="5000"), completion()), Recorder(completion())
    http_mock.post(url("a")).mock(side_effect=a)
    http_mock.post(url("b")).mock(side_effect=b)
    async with LLMClient(pool(entry("a", 1), entry("b", 2))) as client:
        t0 = time.monotonic()
        res = await call(client)
        assert time.monotonic() - t0 < 0.5
        assert (res.backend, res.attempts) == ("b", 2)
        await call(client)  # a is cooling down: straight to b
        assert (a.calls, b.calls) == (1, 2)
        assert client.stats()["a"]["throttled_429"] == 1
        assert 4.0 < client.state()["a"]["cooldown_s"] <= 5.0


@pytest.mark.parametrize(("headers", "low", "high"), [
    ({"retry_after_ms": "300"}, 0.28, 0.6),
    ({"Retry_After": "1"}, 0.95, 1.4),
    ({"Retry_After": "0.4"}, 0.38, 0.7),
    ({"Retry_After": "DATE+2"}, 0.9, 2.4),  # HTTP dates have 1 s resolution
])
async def test_every_retry_after_form_is_honoured(http_mock, headers, low, high):
    if headers.get("Retry_After") == "DATE+2":
        headers = {"Retry_After": formatdate(time.time() + 2, usegmt=True)}
    a = Recorder(throttle(**headers), completion())
    http_mock.post(url("a")).mock(side_effect=a)
    async with LLMClient(pool(entry("a"))) as client:
        res = await call(client)
    gap = a.times[1] - a.times[0]
    assert res.attempts == 2 and low <= gap <= high, gap


async def test_when_all_cool_down_wait_for_the_earliest(http_mock):
    a = Recorder(throttle(retry_after_ms="400"), completion())
    b = Recorder(throttle(retry_after_ms="3000"), completion())
    http_mock.post(url("a")).mock(side_effect=a)
    http_mock.post(url("b")).mock(side_effect=b)
    async with LLMClient(pool(entry("a", 1), entry("b", 2))) as client:
        t0 = time.monotonic()
        res = await call(client)
    assert res.backend == "a" and res.attempts == 3 and 0.38 <= time.monotonic() - t0 < 1.0
    assert b.calls == 1


async def test_429_surfaces_only_when_nothing_can_serve_before_the_deadline(http_mock):
    http_mock.post(url("a")).mock(side_effect=Recorder(throttle(Retry_After="30")))
    async with LLMClient(pool(entry("a"), deadline_s=2)) as client:
        t0 = time.monotonic()
        with pytest.raises(LLMCallFailed) as e:
            await call(client)
    assert time.monotonic() - t0 < 0.5, "no pointless wait for a cooldown past the deadline"
    assert "before the deadline (throttled" in str(e.value) and "a: throttled 429" in str(e.value)


# --- routing ---------------------------------------------------------------------------------

async def test_lower_tier_only_when_higher_tier_is_full(http_mock):
    a, b = Recorder(slow(0.2)), Recorder(completion())
    http_mock.post(url("a")).mock(side_effect=a)
    http_mock.post(url("b")).mock(side_effect=b)
    async with LLMClient(pool(entry("a", 1, max_inflight=2), entry("b", 2))) as client:
        for _ in range(3):  # one at a time: tier 1 always has room
            assert (await call(client)).backend == "a"
        assert b.calls == 0
        results = await asyncio.gather(*(call(client) for _ in range(3)))
    assert sorted(r.backend for r in results) == ["a", "a", "b"]


async def test_lower_tier_when_higher_tier_is_broken(http_mock):
    a, b = Recorder(httpx.Response(500)), Recorder(completion())
    http_mock.post(url("a")).mock(side_effect=a)
    http_mock.post(url("b")).mock(side_effect=b)
    resource = pool(entry("a", 1), entry("b", 2), breaker={"consecutive_failures": 2, "cooloff_s": 30})
    async with LLMClient(resource) as client:
        for _ in range(6):
            assert (await call(client)).backend == "b"
        assert a.calls == 2 and client.stats()["a"]["breaker_trips"] == 1
        assert client.state()["a"]["breaker"] == "open"


async def test_weights_are_roughly_honoured(http_mock):
    http_mock.post(url("a")).mock(side_effect=Recorder(completion()))
    http_mock.post(url("b")).mock(side_effect=Recorder(completion()))
    async with LLMClient(pool(entry("a", weight=3), entry("b", weight=1)), rng=random.Random(7)) as client:
        picks = [(await call(client)).backend for _ in range(400)]
    assert 0.68 < picks.count("a") / 400 < 0.82


async def test_avoid_spreads_samples_and_falls_back(http_mock):
    http_mock.post(url("a")).mock(side_effect=Recorder(completion()))
    http_mock.post(url("b")).mock(side_effect=Recorder(completion()))
    async with LLMClient(pool(entry("a", 1), entry("b", 2))) as client:
        assert (await call(client, avoid={"a"})).backend == "b", "avoid beats tier order"
        assert (await call(client, avoid={"a", "b"})).backend == "a", "nothing else: use an avoided one"


async def test_spread_puts_concurrent_siblings_on_different_backends(http_mock):
    for name in "abc":
        http_mock.post(url(name)).mock(side_effect=Recorder(slow(0.05)))
    async with LLMClient(pool(entry("a", 1), entry("b", 2), entry("c", 2))) as client:
        alone = await asyncio.gather(*(call(client) for _ in range(3)))
        assert {r.backend for r in alone} == {"a"}, "tier 1 has room for all three"
        shared: set[str] = set()
        siblings = await asyncio.gather(*(call(client, spread=shared) for _ in range(3)))
    assert sorted(r.backend for r in siblings) == ["a", "b", "c"] and shared == {"a", "b", "c"}


async def test_a_sample_that_lands_on_a_siblings_backend_is_sampled_not_copied(http_mock):
    """k=3 on two backends: the third sample goes to one the others used; at temperature 0 it would repeat that
    answer word for word and count as agreement."""
    a, b = Recorder(completion()), Recorder(completion())
    http_mock.post(url("a")).mock(side_effect=a)
    http_mock.post(url("b")).mock(side_effect=b)
    async with LLMClient(pool(entry("a", 1), entry("b", 2), repeat_temperature=0.8)) as client:
        siblings: set[str] = set()
        results = [await call(client, spread=siblings) for _ in range(3)]
        await call(client)  # no siblings: the caller's temperature
    temperatures = sorted(body["temperature"] for body in a.bodies + b.bodies)
    assert temperatures == [0.0, 0.0, 0.0, 0.8], temperatures
    assert [r.temperature for r in results] == [0.0, 0.0, 0.8]  # what the call record keeps


async def test_a_retry_on_its_own_backend_keeps_the_callers_temperature(http_mock):
    a = Recorder(httpx.Response(500), completion())
    http_mock.post(url("a")).mock(side_effect=a)
    async with LLMClient(pool(entry("a"))) as client:
        assert (await call(client, spread=set())).attempts == 2
    assert [body["temperature"] for body in a.bodies] == [0.0, 0.0]


@pytest.mark.parametrize("wait_s", [0.0, 30.0])
async def test_spread_wait_keeps_one_sample_per_model_when_one_model_is_slower(http_mock, wait_s):
    """Two models serving one request at a time, one three times slower, four chunks of k=2 at once: without
    patience the fast model answers both samples of some chunks; with it every chunk gets one answer of each."""
    http_mock.post(url("fast")).mock(side_effect=Recorder(slow(0.02)))
    http_mock.post(url("slow")).mock(side_effect=Recorder(slow(0.06)))
    backends = (entry("fast", max_inflight=1), entry("slow", max_inflight=1))
    async with LLMClient(pool(*backends, spread_wait_s=wait_s)) as client:
        async def chunk() -> list[str]:
            siblings: set[str] = set()
            return [r.backend for r in await asyncio.gather(*(call(client, spread=siblings) for _ in range(2)))]

        chunks = await asyncio.gather(*(chunk() for _ in range(4)))
    mixed = sum(sorted(c) == ["fast", "slow"] for c in chunks)
    if wait_s:
        assert mixed == 4, chunks
    else:
        assert mixed < 4, chunks


# --- failures, breaker, deadline -------------------------------------------------------------

async def test_never_straight_back_to_the_backend_that_just_failed(http_mock):
    order: list[str] = []

    def failing(name: str):
        async def side_effect(request: httpx.Request) -> httpx.Response:
            order.append(name)
            return httpx.Response(502)
        return side_effect

    http_mock.post(url("a")).mock(side_effect=failing("a"))
    http_mock.post(url("b")).mock(side_effect=failing("b"))
    resource = pool(entry("a"), entry("b"), max_attempts=6, breaker={"consecutive_failures": 10})
    async with LLMClient(resource, rng=random.Random(3)) as client:
        with pytest.raises(LLMCallFailed) as e:
            await call(client)
    assert len(order) == 6 and all(x != y for x, y in zip(order, order[1:], strict=False)), order
    assert "attempt budget spent" in str(e.value) and "error_5xx 502" in str(e.value)


async def test_the_only_backend_is_retried(http_mock):
    a = Recorder(httpx.Response(502), completion())
    http_mock.post(url("a")).mock(side_effect=a)
    async with LLMClient(pool(entry("a"))) as client:
        res = await call(client)
    assert (res.backend, res.attempts, a.calls) == ("a", 2, 2)


async def test_connect_errors_and_timeouts_fail_over(http_mock):
    http_mock.post(url("a")).mock(side_effect=httpx.ConnectError("refused"))
    http_mock.post(url("b")).mock(side_effect=Recorder(slow(5)))
    http_mock.post(url("c")).mock(side_effect=Recorder(completion()))
    resource = pool(entry("a", 1), entry("b", 2, timeout_s=0.2), entry("c", 3))
    async with LLMClient(resource) as client:
        t0 = time.monotonic()
        res = await call(client)
        assert res.backend == "c" and res.attempts == 3 and time.monotonic() - t0 < 1.0
        stats = client.stats()
    assert stats["a"]["connect_errors"] == 1 and stats["b"]["timeouts"] == 1


async def test_breaker_open_half_open_closed(http_mock):
    a = Recorder(httpx.Response(500), httpx.Response(500), completion())
    b = Recorder(completion())
    http_mock.post(url("a")).mock(side_effect=a)
    http_mock.post(url("b")).mock(side_effect=b)
    resource = pool(entry("a", 1), entry("b", 2), breaker={"consecutive_failures": 2, "cooloff_s": 0.3})
    async with LLMClient(resource) as client:
        await call(client)  # a fails, b serves
        await call(client)  # a fails again: open
        assert client.state()["a"]["breaker"] == "open"
        assert (await call(client)).backend == "b" and a.calls == 2, "open: a is skipped"
        await asyncio.sleep(0.35)
        assert (await call(client)).backend == "a", "half-open: one probe goes to a"
        assert client.state()["a"]["breaker"] == "closed"
        assert (await call(client)).backend == "a"


async def test_deadline_is_never_exceeded(http_mock):
    http_mock.post(url("a")).mock(side_effect=Recorder(slow(10)))
    http_mock.post(url("b")).mock(side_effect=Recorder(slow(10)))
    resource = pool(entry("a", timeout_s=0.4), entry("b", timeout_s=0.4), max_attempts=10, deadline_s=1.0)
    async with LLMClient(resource) as client:
        t0 = time.monotonic()
        with pytest.raises(LLMCallFailed) as e:
            await call(client)
        elapsed = time.monotonic() - t0
    assert 0.95 <= elapsed <= 1.1, elapsed
    assert [a.outcome for a in e.value.attempts] == ["timeout"] * 3  # 0.4 + 0.4 + the 0.2 left


async def test_a_call_deadline_overrides_the_pool(http_mock):
    http_mock.post(url("a")).mock(side_effect=Recorder(slow(10)))
    async with LLMClient(pool(entry("a", timeout_s=30))) as client:
        t0 = time.monotonic()
        with pytest.raises(LLMCallFailed):
            await call(client, deadline_s=0.3)
    assert time.monotonic() - t0 < 0.4


async def test_cancelled_calls_give_their_slot_back(http_mock):
    http_mock.post(url("a")).mock(side_effect=Recorder(slow(10), completion()))
    async with LLMClient(pool(entry("a", max_inflight=1))) as client:
        task = asyncio.create_task(call(client))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client.state()["a"]["inflight"] == 0
        assert (await call(client)).backend == "a"


# --- structured output -----------------------------------------------------------------------

async def test_fenced_reply_is_repaired_without_a_new_call(http_mock):
    a = Recorder(completion("Sure:\n```json\n" + json.dumps(GOOD) + "\n```\nAnything else?"))
    http_mock.post(url("a")).mock(side_effect=a)
    async with LLMClient(pool(entry("a"))) as client:
        res = await call(client)
    assert res.parsed == GOOD and res.attempts == 1 and a.calls == 1


async def test_invalid_output_is_asked_again_elsewhere(http_mock):
    a = Recorder(completion({"client_name": 12345, "extra": True}), completion())
    b = Recorder(completion())
    http_mock.post(url("a")).mock(side_effect=a)
    http_mock.post(url("b")).mock(side_effect=b)
    async with LLMClient(pool(entry("a", 1), entry("b", 2))) as client:
        res = await call(client)
        assert (res.backend, res.attempts, res.parsed) == ("b", 2, GOOD)
        assert client.stats()["a"]["invalid_outputs"] == 1
        assert client.state()["a"]["breaker"] == "closed", "a bad answer is not a broken backend"


async def test_invalid_output_everywhere_exhausts_the_budget(http_mock):
    http_mock.post(url("a")).mock(side_effect=Recorder(completion('{"client_name": "Acme Corp", ')))
    http_mock.post(url("b")).mock(side_effect=Recorder(completion("PRIVILEGED nonsense")))
    async with LLMClient(pool(entry("a"), entry("b"), max_attempts=3)) as client:
        with pytest.raises(LLMCallFailed) as e:
            await call(client)
    msg = str(e.value)
    assert msg.count("invalid_output") == 3 and "no JSON object" in msg
    assert "Acme" not in msg and "PRIVILEGED" not in msg


@pytest.mark.parametrize("mode", ["json_schema", "json_object_schema", "json_object"])
async def test_request_body_per_dialect(http_mock, mode):
    a = Recorder(completion(logprobs=[-0.1, -0.3]))
    http_mock.post(url("a")).mock(side_effect=a)
    async with LLMClient(pool(entry("a", structured_output=mode, logprobs=True))) as client:
        res = await client.complete_json(MESSAGES, Answer, max_tokens=77, temperature=0.2)
    body = a.bodies[0]
    assert body["model"] == "model-a" and body["max_tokens"] == 77 and body["temperature"] == 0.2
    assert body["logprobs"] is True and res.logprob_mean == pytest.approx(-0.2)
    rf = body["response_format"]
    if mode == "json_schema":
        assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True
        assert rf["json_schema"]["schema"]["required"] == ["client_name", "amount"]
        assert body["messages"] == MESSAGES
    elif mode == "json_object_schema":
        assert rf == {"type": "json_object", "schema": Answer.model_json_schema()}
    else:
        assert rf == {"type": "json_object"} and '"client_name"' in body["messages"][0]["content"]
    assert (res.usage.prompt_tokens, res.usage.completion_tokens, res.model) == (100, 20, "served-model")


# --- auth, secrets, logs ---------------------------------------------------------------------

AZURE_URL = "https://aoai.test/openai/deployments/gpt4o/chat/completions"


def azure_entry(**kw):
    return {"name": "aoai", "kind": "azure", "base_url": "https://aoai.test", "model": "gpt4o",
            "api_version": "2024-10-21", **kw}


async def test_key_headers_per_kind(http_mock):
    az, oa = Recorder(completion()), Recorder(completion())
    http_mock.post(AZURE_URL, params={"api-version": "2024-10-21"}).mock(side_effect=az)
    http_mock.post(url("a")).mock(side_effect=oa)
    resource = pool(azure_entry(auth="key", api_key=KEY), entry("a", 2, auth="key", api_key=KEY))
    async with LLMClient(resource) as client:
        await call(client)
        await call(client, avoid={"aoai"})
    assert az.headers[0]["api-key"] == KEY and "authorization" not in az.headers[0]
    assert oa.headers[0]["authorization"] == f"Bearer {KEY}" and "api-key" not in oa.headers[0]
    assert "model" not in az.bodies[0], "azure names the deployment in the URL"


class FakeCredential:
    def __init__(self, lifetime_s: float) -> None:
        self.lifetime_s, self.calls, self.scopes = lifetime_s, 0, []

    async def get_token(self, *scopes, **kwargs):
        self.calls += 1
        self.scopes.append(scopes)

        class Token:
            token = f"entra-token-{self.calls}"
            expires_on = int(time.time() + self.lifetime_s)
        return Token()


async def test_managed_identity_token_is_cached_until_near_expiry(http_mock):
    az = Recorder(completion())
    http_mock.post(AZURE_URL).mock(side_effect=az)
    cred = FakeCredential(lifetime_s=3600)
    async with LLMClient(pool(azure_entry(auth="managed_identity")), credential=cred) as client:
        await asyncio.gather(*(call(client) for _ in range(5)))
    assert cred.calls == 1 and cred.scopes[0] == ("https://cognitiveservices.azure.com/.default",)
    assert all(h["authorization"] == "Bearer entra-token-1" for h in az.headers)

    short = FakeCredential(lifetime_s=60)  # inside the 5-minute refresh margin: fetched every time
    async with LLMClient(pool(azure_entry(auth="managed_identity")), credential=short) as client:
        await call(client)
        await call(client)
    assert short.calls == 2 and az.headers[-1]["authorization"] == "Bearer entra-token-2"


async def test_token_failure_is_an_attempt_not_a_crash(http_mock):
    class Broken:
        async def get_token(self, *scopes, **kwargs):
            raise RuntimeError(f"IMDS said no; secret={KEY}")

    http_mock.post(url("b")).mock(side_effect=Recorder(completion()))
    resource = pool(azure_entry(auth="managed_identity"), entry("b", 2))
    async with LLMClient(resource, credential=Broken()) as client:
        res = await call(client)
        assert res.backend == "b" and res.attempts == 2
        assert client.stats()["aoai"]["auth_errors"] == 1


async def test_logs_and_errors_carry_no_secrets_or_prompt(http_mock, caplog):
    caplog.set_level(logging.DEBUG)
    http_mock.post(AZURE_URL).mock(side_effect=Recorder(
        completion(), httpx.Response(400, json={"error": {"code": "context_length_exceeded",
                                                          "message": f"your prompt {PROMPT_SECRET} is too long"}})))
    async with LLMClient(pool(azure_entry(auth="key", api_key=KEY), max_attempts=1)) as client:
        assert KEY not in repr(client) and KEY not in repr(client.pool)
        await call(client)
        with pytest.raises(LLMCallFailed) as e:
            await call(client)
    assert "context_length_exceeded" in str(e.value)
    for text in (caplog.text, str(e.value), repr(e.value)):
        assert KEY not in text and PROMPT_SECRET not in text and "Acme" not in text
    lines = [r for r in caplog.records if r.name == "f.llm" and r.levelno == logging.INFO]
    assert len(lines) == 2 and lines[0].llm["backend"] == "aoai" and lines[0].llm["status"] == 200
    assert lines[0].llm["prompt_tokens"] == 100 and lines[0].llm["attempt"] == 1


async def test_stats_are_json(http_mock):
    script = Recorder(throttle(retry_after_ms="10"), httpx.Response(500), completion())
    http_mock.post(url("a")).mock(side_effect=script)
    async with LLMClient(pool(entry("a"))) as client:
        await call(client)
        stats = json.loads(json.dumps(client.stats()))
        json.dumps(client.state())
    assert stats["a"] == {"calls": 3, "ok": 1, "throttled_429": 1, "errors_5xx": 1, "timeouts": 0,
                          "connect_errors": 0, "invalid_outputs": 0, "rejected_4xx": 0, "auth_errors": 0,
                          "breaker_trips": 0}


async def test_usage_corrects_the_token_budget(http_mock):
    http_mock.post(url("a")).mock(side_effect=Recorder(completion(usage=(10, 5))))
    frozen = lambda: 100.0  # noqa: E731  (no refill while the call runs)
    async with LLMClient(pool(entry("a", tpm=60_000)), clock=frozen) as client:  # 10_000-token bucket
        full = client.state()["a"]["tpm_level"]
        await call(client)  # charged ~(prompt+schema)/4 + 50, then corrected to the 15 used
        assert full - client.state()["a"]["tpm_level"] == 15
