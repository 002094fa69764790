"""Schemas in each backend's dialect, and the cheap repair of replies."""

import json

import pytest
from pydantic import BaseModel, ConfigDict, Field

from f.extraction.schema import ChunkExtraction
from f.llm.structured import InvalidOutput, parse_reply, response_format, strict_schema, with_schema_prompt


class Inner(BaseModel):
    code: str = Field(pattern=r"^[A-Z]{3}$", description="ISO code")


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    inner: Inner = Field(default_factory=lambda: Inner(code="USD"), description="nested, with a description")
    tags: list[str] = Field(default_factory=list, max_length=5)
    note: str | None = None


def _objects(node):
    if isinstance(node, dict):
        if "properties" in node:
            yield node
        for v in node.values():
            yield from _objects(v)
    elif isinstance(node, list):
        for v in node:
            yield from _objects(v)


def _keys(node):
    if isinstance(node, dict):
        for k, v in node.items():
            yield k
            yield from _keys(v)
    elif isinstance(node, list):
        for v in node:
            yield from _keys(v)


@pytest.mark.parametrize("model", [Outer, ChunkExtraction])
def test_strict_schema_meets_azure_rules(model):
    wire, strict = strict_schema(model.model_json_schema())
    assert strict
    for obj in _objects(wire):
        assert obj["additionalProperties"] is False
        assert sorted(obj["required"]) == sorted(obj["properties"])
    keys = set(_keys(wire))
    assert not keys & {"default", "pattern", "minLength", "maxItems"}
    assert '"$ref"' not in json.dumps(wire["properties"]["inner"]) if model is Outer else True


def test_free_form_map_is_sent_non_strict():
    class Loose(BaseModel):
        extras: dict[str, int]

    rf = response_format("json_schema", Loose)
    assert rf["json_schema"]["strict"] is False and rf["json_schema"]["name"] == "Loose"


def test_dialects():
    assert response_format("json_object_schema", Outer) == {"type": "json_object", "schema": Outer.model_json_schema()}
    assert response_format("json_object", Outer) == {"type": "json_object"}
    msgs = with_schema_prompt([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}], Outer)
    assert len(msgs) == 2 and msgs[0]["content"].startswith("S\n\n") and '"inner"' in msgs[0]["content"]
    assert with_schema_prompt([{"role": "user", "content": "U"}], Outer)[0]["role"] == "system"


@pytest.mark.parametrize("text", [
    '{"name": "a"}',
    'Sure! ```json\n{"name": "a"}\n``` hope it helps',
    'Here: {"name": "a"} and also {"name": "b"}',
    '{"name": "a"}\nThat is the answer.',
])
def test_repair(text):
    assert parse_reply(text, Outer)["name"] == "a"


@pytest.mark.parametrize(("text", "why"), [
    ('{"name": "a", ', "no JSON object"),
    ("", "empty"),
    ("[1, 2]", "not an object"),
    ('{"name": ""}', "name"),
    ('{"name": "a", "secret_extra": "PRIVILEGED"}', "secret_extra"),
])
def test_invalid_replies_say_why_without_quoting(text, why):
    with pytest.raises(InvalidOutput) as e:
        parse_reply(text, Outer)
    assert why in str(e.value) and "PRIVILEGED" not in str(e.value)
