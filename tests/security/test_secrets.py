"""Secrets (API keys, connection strings, tokens) never appear in logs, step results, blob or exceptions."""

import json
import subprocess

import aiohttp
import pytest

from embedded.chaos.lab import open_lab
from embedded.chaos.scenarios import scan_for_secrets, secrets_row
from embedded.runner.context import open_run
from embedded.runner.workspace import Workspace
from f.core.job import InvalidInput
from f.llm.pool import LLMPool, PoolConfigError


async def test_planted_keys_appear_in_no_output(corpus):
    """The planted storage key and API key, through a good run, a bad document, a 401 and a refused argument."""
    row = await secrets_row(corpus)
    print(f"\n{row.scenario}: {row.what}")
    failed = [k for k, ok in row.checks.items() if not ok]
    assert row.ok and not failed, f"{failed}: {row.what}"


async def test_the_scan_would_find_a_leak():
    """The scan itself can fail: a key written to a job log, a step result or a blob is found."""
    async with open_lab("M-LEAK") as lab:
        runs = lab.state / "runs" / "job"
        runs.mkdir(parents=True)
        (runs / "x.log").write_text(f"connecting with {lab.connection_string}\n")
        async with lab.store() as s:
            await s.put(lab.matter.doc("d").failure, json.dumps({"error": f"bad key {lab.api_key}"}))
        hits, _ = await scan_for_secrets(lab, [lab.api_key, lab.connection_string], {"result": lab.account_key})
        assert any(h.startswith("file runs/job/x.log") for h in hits)
        assert any(h.startswith("blob matters/M-LEAK/d/failure.json") for h in hits)


def test_pool_and_store_errors_never_quote_the_key():
    key = "sk-NEVER-SHOW-ME-0123456789"
    with pytest.raises(PoolConfigError) as caught:
        LLMPool.model_validate({"backends": [{"name": "b", "kind": "azure", "base_url": "ftp://x", "model": "m",
                                              "auth": "key", "api_key": key, "rpm": "many"}]})
    assert key not in str(caught.value)
    from f.core.job import boundary

    @boundary
    def main(store: dict, pool: dict, matter_id: str) -> None:  # pragma: no cover - refused before it runs
        raise AssertionError

    with pytest.raises(InvalidInput) as caught:
        main({"container": "x", "connection_string": f"AccountKey={key}"}, {"backends": [{"api_key": key}]}, "M")
    assert key not in str(caught.value) and "store.container" in str(caught.value)


async def test_resolved_arguments_are_not_left_on_disk(tmp_path):
    """A job's args.json holds resolved resources: it is gone once the job has read it."""
    from embedded.runner import run_script

    (tmp_path / "f" / "t").mkdir(parents=True)
    (tmp_path / "f" / "t" / "echo.py").write_text("def main(secret: str) -> int:\n    return len(secret)\n")
    (tmp_path / "resources" / "local" / "f" / "t").mkdir(parents=True)
    ws = Workspace(tmp_path, variables={"f/t/key": "sk-ON-DISK-NEVER"})
    assert await run_script(ws, "f/t/echo", {"secret": "$var:f/t/key"}) == len("sk-ON-DISK-NEVER")
    leftovers = [p for p in (tmp_path / ".state").rglob("*") if p.is_file() and b"sk-ON-DISK-NEVER" in p.read_bytes()]
    assert not leftovers


async def test_the_local_api_refuses_a_request_without_the_run_token(tmp_path):
    """Jobs read resources (and so secrets) from the run's local API: only with the run's token."""
    (tmp_path / "resources" / "local").mkdir(parents=True)
    ws = Workspace(tmp_path, variables={"f/t/key": "sk-API-ONLY"})
    async with open_run(ws, 1, False) as run, aiohttp.ClientSession() as http:
        url = f"{run.api.url}/api/w/{ws.id}/variables/get_value/f/t/key"
        for headers in ({}, {"Authorization": "Bearer wrong-token"}):
            async with http.get(url, headers=headers) as resp:
                assert resp.status == 401 and "sk-API-ONLY" not in await resp.text()
        async with http.get(url, headers={"Authorization": f"Bearer {run.api.token}"}) as resp:
            assert resp.status == 200 and "sk-API-ONLY" in await resp.text()


def test_the_audit_finds_a_committed_secret(tmp_path):
    """scripts/audit's secret scan fails on a new secret and passes once it is reviewed into the baseline."""
    pytest.importorskip("detect_secrets", reason="scripts/audit installs requirements/audit.txt")
    from embedded.audit import audit_secrets

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "settings.py").write_text('AWS_ACCESS_KEY_ID = "AKIAZ7Q2EXAMPLE4XJ3M"\n'
                                          'STORAGE = "DefaultEndpointsProtocol=https;AccountName=prod;AccountKey='
                                          'q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6j7k8l9z0x1c2v3b4n5m6q7w8e9r0t1y2u3i4o5p6a7s8d9f0g1h2==;"\n')
    assert audit_secrets(False, tmp_path) == 1
    assert audit_secrets(True, tmp_path) == 0  # reviewed: accepted into the baseline
    assert audit_secrets(False, tmp_path) == 0
