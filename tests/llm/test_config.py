"""The llm_pool resource: field-named errors, URLs, and secrets that never show."""

import pytest

from f.llm.pool import LLMPool, PoolConfigError

KEY = "sk-very-secret-key-123"


def azure(**kw):
    return {"name": "aoai", "kind": "azure", "base_url": "https://x.openai.azure.com/", "model": "gpt4o",
            "api_version": "2024-10-21", "auth": "key", "api_key": KEY, **kw}


def test_errors_name_the_field():
    bad = {"backends": [azure(), azure(name="b", rpm=0), azure(name="c", api_version=None), {"name": "d"}]}
    with pytest.raises(PoolConfigError) as e:
        LLMPool.from_resource(bad)
    msg = str(e.value)
    assert "backends[1].rpm: Input should be greater than 0" in msg
    assert "backends[2].api_version: required for kind 'azure'" in msg
    assert "backends[3].kind: Field required" in msg


@pytest.mark.parametrize("build", [LLMPool.from_resource, LLMPool.model_validate, lambda d: LLMPool(**d)])
def test_errors_never_echo_the_input(build):
    """pydantic's default message would print the whole backend dict, key included."""
    bad = {"backends": [azure(kind=None), azure(name="x", api_key=["not", KEY])]}
    with pytest.raises(PoolConfigError) as e:
        build(bad)
    assert KEY not in str(e.value) and KEY not in repr(e.value)
    assert "backends[0].kind" in str(e.value) and "backends[1].api_key" in str(e.value)


def test_secret_absent_from_repr_and_dump():
    p = LLMPool.from_resource({"backends": [azure()]})
    assert KEY not in repr(p) and KEY not in str(p.model_dump()) and KEY not in p.model_dump_json()
    assert p.backends[0].api_key.get_secret_value() == KEY


def test_urls_per_kind():
    p = LLMPool.from_resource({"backends": [
        azure(),
        {"name": "vllm", "kind": "openai", "base_url": "http://gpu:8000/v1/", "model": "llama"},
    ]})
    assert p.backends[0].url == "https://x.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
    assert p.backends[1].url == "http://gpu:8000/v1/chat/completions"


def test_cross_field_rules():
    with pytest.raises(PoolConfigError, match=r"backends\[0\].base_url: must end in /v1"):
        LLMPool.from_resource({"backends": [{"name": "o", "kind": "openai", "base_url": "http://h:1", "model": "m"}]})
    with pytest.raises(PoolConfigError, match=r"backends\[0\].api_key: required when auth is 'key'"):
        LLMPool.from_resource({"backends": [azure(api_key=None)]})
    with pytest.raises(PoolConfigError, match="names must be unique: aoai"):
        LLMPool.from_resource({"backends": [azure(), azure()]})
    with pytest.raises(PoolConfigError, match=r"backends\[0\].structured_output"):
        LLMPool.from_resource({"backends": [azure(structured_output="xml")]})
