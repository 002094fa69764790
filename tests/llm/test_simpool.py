"""The client against the simulated pool: real HTTP servers on loopback that throttle, fail and hang."""

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from embedded.simpool import SimBackendSpec, default_sim_specs, pool_resource, run_sim_pool
from f.core.models import Chunk
from f.extraction.prompt import build_messages
from f.extraction.schema import ChunkExtraction
from f.llm.client import LLMClient, LLMResult

ROOT = Path(__file__).resolve().parents[2]
CHUNK = Chunk(
    chunk_id="c0001", pages=[1], content_hash="h",
    text_by_page={1: "ENGAGEMENT LETTER\nMatter No. 2024-0113\nDate: March 3, 2024\n"
                     "Dear Ms. Rivera, we are pleased to represent Acme Holdings LLC.\n"},
)
MESSAGES = build_messages(CHUNK)


async def server_stats(backends) -> dict[str, dict[str, int]]:
    async with httpx.AsyncClient() as http:
        return {b.name: (await http.get(b.stats_url)).json() for b in backends}


async def run_calls(client: LLMClient, n: int, **kw: Any) -> list[LLMResult]:
    return await asyncio.gather(*(
        client.complete_json(messages=MESSAGES, schema=ChunkExtraction, max_tokens=400, **kw) for _ in range(n)))


def fast(name: str, **kw: Any) -> SimBackendSpec:
    return SimBackendSpec(name=name, latency_ms=kw.pop("latency_ms", 15), **kw)


async def test_429_storm_surfaces_no_error():
    """The client is told no budgets; three backends throttle hard with all three header styles."""
    specs = [
        fast("ptu", style="azure", api_key="k-ptu", rpm=180, window_s=1, retry_after_style="ms", priority=1),
        fast("paygo", style="azure", api_key="k-paygo", rpm=240, window_s=1, retry_after_style="seconds",
             priority=2),
        fast("vllm", rpm=240, window_s=1, retry_after_style="date", priority=2),
    ]
    async with run_sim_pool(specs) as backends:
        resource = pool_resource(specs, backends, deadline_s=30)
        for b in resource["backends"]:
            b["rpm"] = None
        async with LLMClient(resource) as client:
            results = await run_calls(client, 40)
            client_stats = client.stats()
        seen = await server_stats(backends)
    assert len(results) == 40 and all(ChunkExtraction.model_validate(r.parsed) for r in results)
    storms = {name: s["throttled_429"] for name, s in seen.items()}
    assert storms["ptu"] > 0 and sum(storms.values()) >= 10, storms
    assert {n: s["throttled_429"] for n, s in client_stats.items()} == storms
    assert sum(s["ok"] for s in seen.values()) == 40


async def test_down_backend_is_routed_around_then_rejoins():
    specs = [fast("primary", priority=1, down_windows=[(0.0, 1.0)], down_mode="503"), fast("backup", priority=2)]
    async with run_sim_pool(specs) as backends:
        breaker = {"consecutive_failures": 3, "cooloff_s": 0.3, "max_cooloff_s": 0.3}
        resource = pool_resource(specs, backends, breaker=breaker)
        async with LLMClient(resource) as client:
            early = [r for _ in range(6) for r in await run_calls(client, 5)]
            await asyncio.sleep(1.2)  # the window is over, the cool-off too
            probe = await run_calls(client, 3)  # half-open: one probe goes to primary, the rest elsewhere
            late = [r for _ in range(2) for r in await run_calls(client, 3)]
            stats = client.stats()
        seen = await server_stats(backends)
    assert len(early) == 30 and sorted(r.backend for r in probe) == ["backup", "backup", "primary"]
    assert {r.backend for r in late} == {"primary"}
    assert stats["primary"]["breaker_trips"] >= 1
    assert seen["primary"]["down"] <= 10, "the breaker stops sending to a dead backend"
    assert seen["backup"]["ok"] >= 25


async def test_refused_connections_are_routed_around():
    specs = [fast("dead", priority=1, down_windows=[(0.0, 3600.0)], down_mode="refuse"), fast("alive", priority=2)]
    async with run_sim_pool(specs) as backends:
        async with LLMClient(pool_resource(specs, backends)) as client:
            results = await run_calls(client, 10)
            stats = client.stats()
    assert {r.backend for r in results} == {"alive"}
    assert stats["dead"]["connect_errors"] >= 1 and stats["dead"]["ok"] == 0


@pytest.mark.parametrize("fault", [{"p_hang": 1.0}, {"p_slow_drip": 1.0, "drip_s": 5.0}])
async def test_hangs_and_slow_drips_time_out_and_fail_over(fault):
    specs = [fast("stuck", priority=1, timeout_s=0.3, **fault), fast("fine", priority=2)]
    async with run_sim_pool(specs) as backends:
        async with LLMClient(pool_resource(specs, backends)) as client:
            t0 = time.monotonic()
            results = await run_calls(client, 8)
            elapsed = time.monotonic() - t0
            stats = client.stats()
        seen = await server_stats(backends)
    assert {r.backend for r in results} == {"fine"}
    assert elapsed < 1.5 and max(r.latency_s for r in results) < 0.3 + 0.5
    assert stats["stuck"]["timeouts"] >= 1
    assert seen["stuck"]["hangs"] + seen["stuck"]["slow_drips"] >= 1


async def test_concurrency_caps_are_honoured():
    specs = [fast("small", latency_ms=80, max_inflight=3, priority=1),
             fast("big", latency_ms=80, max_inflight=5, priority=2)]
    async with run_sim_pool(specs) as backends:
        async with LLMClient(pool_resource(specs, backends)) as client:
            results = await run_calls(client, 40)
        seen = await server_stats(backends)
    assert len(results) == 40
    assert seen["small"]["max_concurrent"] == 3 and seen["big"]["max_concurrent"] == 5


async def test_invalid_and_malformed_outputs_are_asked_again():
    specs = [fast("sloppy", priority=1, p_invalid=0.5, p_bad_json=0.5, bad_json_style="truncated"),
             fast("careful", priority=2)]
    async with run_sim_pool(specs) as backends:
        async with LLMClient(pool_resource(specs, backends)) as client:
            results = [r for _ in range(10) for r in await run_calls(client, 1)]
            stats = client.stats()
    assert {r.backend for r in results} == {"careful"} and all(r.attempts == 2 for r in results)
    assert stats["sloppy"]["invalid_outputs"] == 10


async def test_wrong_key_is_rejected_and_avoided():
    specs = [fast("aoai", style="azure", api_key="right", priority=1), fast("other", priority=2)]
    async with run_sim_pool(specs) as backends:
        resource = pool_resource(specs, backends)
        resource["backends"][0]["api_key"] = "wrong"
        async with LLMClient(resource) as client:
            results = await run_calls(client, 3)
            stats = client.stats()
        seen = await server_stats(backends)
    assert {r.backend for r in results} == {"other"}
    assert stats["aoai"]["rejected_4xx"] == seen["aoai"]["unauthorized"] >= 1


@pytest.mark.parametrize("mode", ["json_schema", "json_object_schema", "json_object"])
async def test_every_structured_output_dialect_reaches_the_model(mode):
    specs = [fast("m", structured_output=mode)]
    async with run_sim_pool(specs) as backends:
        async with LLMClient(pool_resource(specs, backends)) as client:
            (result,) = await run_calls(client, 1)
    assert set(result.parsed) == set(ChunkExtraction.model_fields)
    assert result.logprob_mean is not None and result.logprob_mean < 0


async def test_default_demo_pool_spreads_k_samples():
    specs = default_sim_specs()
    async with run_sim_pool(specs) as backends:
        async with LLMClient(pool_resource(specs, backends)) as client:
            for _ in range(5):
                used: set[str] = set()
                for _ in range(3):
                    res = await client.complete_json(MESSAGES, ChunkExtraction, max_tokens=400, avoid=used)
                    used.add(res.backend)
                assert used == {"provisioned", "paygo", "vllm"}
            json.dumps(client.stats())


def test_cli_serves_and_prints_the_pool(tmp_path):
    config = tmp_path / "specs.json"
    config.write_text(json.dumps([{"name": "one", "style": "azure", "api_key": "k", "latency_ms": 5}]))
    proc = subprocess.Popen([sys.executable, "-m", "embedded.simpool", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        ready = json.loads(proc.stdout.readline())
        (backend,) = ready["backends"]
        pool = ready["llm_pool"]
        assert pool["backends"][0]["kind"] == "azure" and pool["backends"][0]["base_url"] == backend["base_url"]

        async def one_call() -> LLMResult:
            async with LLMClient(pool) as client:
                return await client.complete_json(MESSAGES, ChunkExtraction, max_tokens=100)

        assert asyncio.run(one_call()).backend == "one"
        assert httpx.get(backend["stats_url"]).json()["ok"] == 1
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
