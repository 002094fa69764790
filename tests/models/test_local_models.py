"""The real local models: llama.cpp servers started by embedded/llamacpp.py, called through the
project's LLM client with the pool resource resources/local/f/llm/pool_local_models.resource.yaml.

Skipped only when the model packages are missing (requirements/models.txt; scripts/setup installs
them); under CI=true a missing package fails instead, so CI cannot pass by skipping.
"""

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pages import ENGAGEMENT_LETTER, INVOICE, FewFields, field_correct

from embedded.llamacpp import LOCAL_MODELS, run_local_models
from embedded.services import backend_url_variable
from f.extraction.prompt import build_messages, compact_messages
from f.extraction.schema import ChunkExtraction
from f.llm.client import LLMClient
from f.llm.pool import LLMPool

ROOT = Path(__file__).resolve().parents[2]
RESOURCE = ROOT / "resources" / "local" / "f" / "llm" / "pool_local_models.resource.yaml"


pytestmark = pytest.mark.timeout(300)


def pool_value(urls: dict[str, str]) -> dict[str, Any]:
    """The resource's value with its $var: URLs filled in as the runner's services fill them."""
    value = yaml.safe_load(RESOURCE.read_text())["value"]
    variables = {f"$var:{backend_url_variable(name)}": url for name, url in urls.items()}
    for backend in value["backends"]:
        backend["base_url"] = variables[backend["base_url"]]
    return value


@pytest.fixture(scope="module")
async def servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, str]]:
    async with run_local_models(tmp_path_factory.mktemp("llamacpp-logs")) as backends:
        yield dict(backends)


def test_resource_names_every_local_model() -> None:
    pool = LLMPool.from_resource(pool_value({m.name: "http://127.0.0.1:1/v1" for m in LOCAL_MODELS}))
    assert {b.name for b in pool.backends} == {m.name for m in LOCAL_MODELS}
    assert all(b.structured_output == "json_object_schema" and b.kind == "openai" for b in pool.backends)


async def test_servers_answer_models(servers: dict[str, str]) -> None:
    assert set(servers) == {"local-smollm2", "local-gemma3"}
    assert all(url.startswith("http://127.0.0.1:") and url.endswith("/v1") for url in servers.values())


@pytest.mark.parametrize("backend", ["local-smollm2", "local-gemma3"])
async def test_client_gets_valid_json_and_the_client_name(servers: dict[str, str], backend: str) -> None:
    """One backend at a time, through LLMClient: grammar-constrained JSON that validates, with the
    field both models get right on a short engagement letter (with a three-field schema; see
    scripts/measure-models for the full schemas)."""
    pool = pool_value(servers)
    pool["backends"] = [b for b in pool["backends"] if b["name"] == backend]
    t0 = time.monotonic()
    async with LLMClient(pool) as client:
        res = await client.complete_json(compact_messages(ENGAGEMENT_LETTER.chunk()), FewFields, max_tokens=150)
    assert res.backend == backend and res.attempts == 1
    fields = FewFields.model_validate(res.parsed).model_dump()
    assert field_correct("client_name", fields["client_name"], ENGAGEMENT_LETTER.truth["client_name"]), fields
    assert res.usage.completion_tokens < 150
    print(f"{backend}: {time.monotonic() - t0:.1f}s {res.usage} {fields}")


async def test_project_schema_is_valid_json_through_the_pool(servers: dict[str, str]) -> None:
    """The project's prompt and ChunkExtraction through the two-backend pool: schema-valid (the
    grammar sees to it), whatever the small models make of the content."""
    async with LLMClient(pool_value(servers)) as client:
        res = await client.complete_json(build_messages(INVOICE.chunk()), ChunkExtraction, max_tokens=700)
    ChunkExtraction.model_validate(res.parsed)
    assert res.backend in servers
