"""The claim that makes an LLM call paid once when two jobs want it at the same time (f/pipeline/extract.py)."""

import asyncio
import json
import time

import pytest

import f.pipeline.extract as extract_mod
from f.core.layout import MatterPaths
from f.core.models import Chunk
from f.core.storage import open_store
from f.extraction.chunking import content_hash
from f.extraction.profiles import PROFILES
from f.llm.client import LLMResult, Usage
from f.pipeline.extract import Claim, _acquire, _one_call

DOC = MatterPaths("M-CLAIMS").doc("d1")


PAID = LLMResult(parsed={"document_type": {"value": "invoice", "page": 1, "quote": "INVOICE"}}, backend="b0", model="m",
                 latency_s=0.1, usage=Usage(prompt_tokens=1, completion_tokens=1), attempts=1)


class FakeClient:
    """Counts paid calls; each takes `seconds`."""

    def __init__(self, seconds: float = 0.3) -> None:
        self.paid, self.seconds = 0, seconds
        self.pool = type("P", (), {"deadline_s": 5.0, "output_profile": "full"})()

    async def complete_json(self, **_kw):
        self.paid += 1
        await asyncio.sleep(self.seconds)
        return PAID


def chunk() -> Chunk:
    return Chunk(chunk_id="c0001-abc", pages=[1], text_by_page={1: "INVOICE"}, content_hash=content_hash("INVOICE"))


FULL = PROFILES["full"].request(chunk(), None)


@pytest.fixture
async def store(store_config):
    async with open_store(store_config, DOC.prefix, create_container=True) as s:
        yield s


async def test_concurrent_jobs_pay_once(store):
    client = FakeClient()
    outcomes = await asyncio.gather(*(_one_call(client, store, DOC, chunk(), 0, set(), FULL) for _ in range(4)))
    assert client.paid == 1 and sorted(outcomes) == ["cached", "cached", "cached", "ok"]
    assert not await store.list_names(f"{DOC.prefix}claims/")  # released


async def test_a_live_claim_blocks_and_an_expired_one_is_taken_over(store, monkeypatch):
    path = DOC.claim("c0001-abc", "h1")
    assert await _acquire(store, path) is not None
    assert await _acquire(store, path) is None  # alive: someone is making the call
    stale = Claim(owner="dead-worker", expires_at=time.time() - 1).model_dump_json()
    _, etag = await store.read_with_etag(path)
    await store.replace(path, stale, etag)
    assert await _acquire(store, path) is not None  # its holder died: taken over
    assert json.loads(await store.read(path))["owner"] != "dead-worker"


async def test_a_dead_holders_call_is_made_once_its_claim_expires(store, monkeypatch):
    monkeypatch.setattr(extract_mod, "CLAIM_TTL_S", 0.6)
    c = chunk()
    key = extract_mod.call_hash(c, 0, FULL)
    stale = Claim(owner="killed-job", expires_at=time.time() + 0.6).model_dump_json()
    await store.create(DOC.claim(c.chunk_id, key), stale)  # left by a job killed mid-call
    client = FakeClient(0.05)
    started = time.monotonic()
    assert await _one_call(client, store, DOC, c, 0, set(), FULL) == "ok"
    assert client.paid == 1 and 0.4 < time.monotonic() - started < 5
