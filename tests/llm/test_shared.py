"""Budgets, cooldowns and breakers shared across processes through the store (f.llm.shared).

The cross-process tests start real OS processes (tests/llm/xproc_worker.py), each with its own
LLMClient, against the simulated pool served from this process, and read what the servers saw.
"""

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from llm_helpers import (
    MESSAGES,
    Answer,
    Recorder,
    completion,
    entry,
    pool,
    throttle,
    url,
)

from embedded.simpool import SimBackendSpec, pool_resource, run_sim_pool
from f.core.storage import open_store
from f.llm.client import LLMClient
from f.llm.shared import Board, pool_key

WORKER = Path(__file__).with_name("xproc_worker.py")
ROOT = Path(__file__).resolve().parents[2]


async def server_stats(backends) -> dict[str, dict[str, int]]:
    async with httpx.AsyncClient() as http:
        return {b.name: (await http.get(b.stats_url)).json() for b in backends}


async def run_workers(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    procs = [await asyncio.create_subprocess_exec(sys.executable, str(WORKER), json.dumps(job), cwd=ROOT,
                                                  stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
             for job in jobs]
    outs = await asyncio.gather(*(asyncio.wait_for(p.communicate(), 90) for p in procs))
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()[-3000:]
    return [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outs]


def sim(name: str, **kw: Any) -> SimBackendSpec:
    return SimBackendSpec(name=name, latency_ms=kw.pop("latency_ms", 10), **kw)


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "local-only"])
async def test_processes_share_one_rate_budget(store_config, shared):
    """4 processes, each wanting 8 calls/s for 6 s, against a tier-1 backend allowing 120 requests a minute.
    Shared: together they stay within the budget (a 20-request burst plus 2/s), no 429, and tier 2 takes
    the rest. Local-only, the contrast: each process spends the whole budget, 4 times over."""
    rpm, n, duration = 120, 4, 6.0
    specs = [sim("ptu", style="azure", rpm=rpm, window_s=60, retry_after_style="ms", priority=1),
             sim("paygo", priority=2)]
    async with run_sim_pool(specs) as backends:
        resource = pool_resource(specs, backends, deadline_s=20)
        start = time.time() + 4.0  # every process is up and has its first lease by then
        results = await run_workers([{"store": store_config, "pool": resource, "rate": 8, "duration_s": duration,
                                      "start_at": start, "shared": shared}] * n)
        seen = await server_stats(backends)
    assert sum(r["ok"] for r in results) == n * 8 * duration and not any(r["failed"] for r in results), results[0]
    budget = rpm / 6 + rpm / 60 * (duration + 3.0)  # burst_s=10 bucket + rate over the run and one lease ttl
    sent = seen["ptu"]["requests"]
    if shared:
        assert sent <= budget and seen["ptu"]["throttled_429"] == 0, seen["ptu"]
        assert sent >= 0.7 * (rpm / 6 + rpm / 60 * duration), "the budget is used, not just respected"
    else:
        assert sent > rpm >= 2 * budget and seen["ptu"]["throttled_429"] > 0, seen["ptu"]


async def test_a_breaker_and_a_cooldown_seen_in_one_process_are_avoided_by_others(store_config):
    """Process A finds tier-1 "broken" failing (its breaker opens) and "throttled" out of budget (429 with
    Retry-After 60 s). B and C, started afterwards, never send either of them a request."""
    specs = [sim("broken", p_5xx=1.0, priority=1),
             sim("throttled", style="azure", rpm=1, window_s=60, retry_after_style="seconds", priority=1),
             sim("fine", priority=2)]
    async with run_sim_pool(specs) as backends:
        resource = pool_resource(specs, backends, deadline_s=20,
                                 breaker={"consecutive_failures": 3, "cooloff_s": 30, "max_cooloff_s": 60})
        for b in resource["backends"]:
            b["rpm"] = None  # the client is told no budget: it learns from the 429
        job = {"store": store_config, "pool": resource, "rate": 20, "sequential": True, "start_at": 0}
        (a,) = await run_workers([{**job, "duration_s": 0.5}])
        after_a = await server_stats(backends)
        b, c = await run_workers([{**job, "duration_s": 0.5}] * 2)
        seen = await server_stats(backends)
    assert a["ok"] == b["ok"] == c["ok"] == 10
    assert a["backends"]["broken"]["breaker_trips"] == 1 and a["backends"]["throttled"]["throttled_429"] >= 1
    assert seen["broken"]["requests"] == after_a["broken"]["requests"] == a["backends"]["broken"]["calls"], seen
    assert seen["throttled"]["requests"] == after_a["throttled"]["requests"], seen
    for other in (b, c):
        assert other["backends"]["broken"]["calls"] == other["backends"]["throttled"]["calls"] == 0


# --- one process, the board's mechanics ---------------------------------------------------------

async def test_leases_are_given_back_on_close_and_the_store_is_touched_per_lease_not_per_call(
        store_config, http_mock):
    http_mock.post(url("a")).mock(side_effect=Recorder(completion()))
    resource = pool(entry("a", rpm=600))  # 100-request shared bucket
    async with open_store(store_config, "", create_container=True) as store:
        async with LLMClient(resource, board_store=store) as client:
            board = client._board
            assert board is not None
            for _ in range(40):
                await client.complete_json(MESSAGES, Answer, max_tokens=20)
            assert client.state()["a"]["shared"] is True
            syncs = board.syncs
        assert syncs <= 12, f"{syncs} store round-trips for 40 calls"
        doc = json.loads((await store.read_with_etag(board.path("a")))[0])
    assert 100 - 40 <= doc["rpm"]["level"] <= 100, "what was leased and not used went back"


async def test_a_429_in_one_client_cools_the_backend_for_another(store_config, http_mock):
    a = Recorder(throttle(retry_after_ms="30000"), completion())
    http_mock.post(url("a")).mock(side_effect=a)
    http_mock.post(url("b")).mock(side_effect=Recorder(completion()))
    resource = pool(entry("a", 1), entry("b", 2))
    async with open_store(store_config, "", create_container=True) as store:
        async with LLMClient(resource, board_store=store) as first:
            assert (await first.complete_json(MESSAGES, Answer)).backend == "b"
            await asyncio.sleep(0.1)  # the transition is written in the background
        async with LLMClient(resource, board_store=store) as second:
            assert 25 < second.state()["a"]["cooldown_s"] <= 30
            assert (await second.complete_json(MESSAGES, Answer)).backend == "b"
    assert a.calls == 1


async def test_without_a_reachable_store_the_client_still_works_on_a_conservative_share(http_mock, caplog):
    class Down:
        async def read_with_etag(self, path: str) -> tuple[bytes, str]:
            raise ConnectionError("store down")

        async def create(self, path: str, data: bytes | str) -> bool:
            raise ConnectionError("store down")

        async def replace(self, path: str, data: bytes | str, etag: str) -> str:
            raise ConnectionError("store down")

    http_mock.post(url("a")).mock(side_effect=Recorder(completion()))
    async with LLMClient(pool(entry("a", rpm=2400), shared={"fallback_processes": 4}), board_store=Down()) as c:
        results = [await c.complete_json(MESSAGES, Answer) for _ in range(10)]  # 10/s leased per second
    assert {r.backend for r in results} == {"a"}
    assert "llm.board_unavailable backend=a" in caplog.text


def test_shared_state_is_optional():
    resource = pool(entry("a"), shared={"enabled": False})
    assert LLMClient(resource, board_store=object())._board is None  # type: ignore[arg-type]
    assert LLMClient(pool(entry("a")))._board is None
    assert pool_key(LLMClient(pool(entry("a"))).pool) != pool_key(LLMClient(pool(entry("b"))).pool)
    assert Board  # the board is what LLMClient builds when given a store
