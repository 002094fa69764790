"""Structured output: the JSON Schema we send, in each backend's dialect, and parsing the reply.

Strict mode. For `json_schema` we send `strict: true` with the schema rewritten the way Azure
OpenAI's structured outputs require (api-version 2024-08-01-preview or later):
every object gets `additionalProperties: false` and lists all its properties in `required`
(optional fields stay nullable through pydantic's `anyOf [..., null]`), `default` is removed
(rejected as "not permitted"), a `$ref` with sibling keywords is inlined, and the constraint
keywords Azure documents as unsupported (minLength, pattern, minimum, minItems, ...) are
dropped from the wire copy. Dropping them is safe because every reply is validated locally
with the pydantic model, which still enforces them. A schema that cannot be strict (free-form
maps, tuples) is sent as-is with `strict: false`. vLLM and Ollama accept either form.
"""

import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from f.llm.pool import StructuredMode

_DROP = {
    "default", "minLength", "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties",
    "unevaluatedProperties", "propertyNames", "unevaluatedItems", "contains", "minContains", "maxContains",
}
_NOT_STRICT = {"patternProperties", "prefixItems", "if", "then", "else", "not", "dependentSchemas"}

SCHEMA_PROMPT = "Answer with one JSON object (no prose, no code fences) that conforms to this JSON Schema:"


class InvalidOutput(ValueError):
    """The reply was not a JSON object, or did not validate; the message has no reply text."""


def schema_name(model: type[BaseModel]) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", model.__name__)[:64] or "output"


def strict_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(wire schema, strict?) for OpenAI/Azure `json_schema` mode; see the module docstring."""
    defs: dict[str, Any] = schema.get("$defs", {})

    def resolve(ref: str) -> dict[str, Any]:
        target: dict[str, Any] = defs[ref.removeprefix("#/$defs/")]
        return target

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        if _NOT_STRICT & node.keys() or isinstance(node.get("additionalProperties"), dict):
            raise _CannotBeStrict
        if "$ref" in node and len(node) > 1:  # strict mode rejects $ref with siblings: inline it
            node = {**resolve(node["$ref"]), **{k: v for k, v in node.items() if k != "$ref"}}
        if "allOf" in node and len(node["allOf"]) == 1:
            node = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
        out = {k: walk(v) if k not in ("properties", "$defs") else {n: walk(s) for n, s in v.items()}
               for k, v in node.items() if k not in _DROP}
        if "properties" in out:
            out["additionalProperties"] = False
            out["required"] = list(out["properties"])
        elif out.get("type") == "object":
            out["additionalProperties"] = False
            out.setdefault("properties", {})
            out["required"] = []
        return out

    try:
        return walk(schema), True
    except _CannotBeStrict:
        return schema, False


class _CannotBeStrict(Exception):
    pass


def response_format(mode: StructuredMode, model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    if mode == "json_schema":
        wire, strict = strict_schema(schema)
        return {"type": "json_schema", "json_schema": {"name": schema_name(model), "strict": strict, "schema": wire}}
    if mode == "json_object_schema":  # llama-cpp-python's server: grammar-constrained by the schema
        return {"type": "json_object", "schema": schema}
    return {"type": "json_object"}


def with_schema_prompt(messages: list[dict[str, Any]], model: type[BaseModel]) -> list[dict[str, Any]]:
    """For plain `json_object` backends: state the schema in the (first) system message.

    Appended to the existing system message rather than added as a second one, because many
    local chat templates reject a system message that is not first.
    """
    text = f"{SCHEMA_PROMPT}\n{json.dumps(model.model_json_schema(), separators=(',', ':'))}"
    if messages and messages[0].get("role") == "system":
        first = {**messages[0], "content": f"{messages[0].get('content', '')}\n\n{text}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def extract_json_object(text: str) -> Any:
    """The reply as JSON; else the cheap repair: strip code fences and surrounding prose and take
    the first complete JSON object. Raises InvalidOutput."""
    try:
        return json.loads(text, strict=False)  # llama.cpp's grammar lets raw control characters into strings
    except json.JSONDecodeError:
        pass
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL | re.IGNORECASE)
    candidates = [fenced.group(1)] if fenced else []
    candidates.append(text)
    decoder = json.JSONDecoder(strict=False)
    for candidate in candidates:
        start = candidate.find("{")
        while start != -1:
            try:
                obj, _ = decoder.raw_decode(candidate, start)
                return obj
            except json.JSONDecodeError:
                start = candidate.find("{", start + 1)
    raise InvalidOutput(f"no JSON object in the reply ({len(text)} chars)")


def parse_reply(text: str | None, model: type[BaseModel]) -> dict[str, Any]:
    """Validated output as a JSON-able dict (defaults filled in), or InvalidOutput."""
    if not text:
        raise InvalidOutput("empty reply")
    obj = extract_json_object(text)
    if not isinstance(obj, dict):
        raise InvalidOutput(f"reply is JSON {type(obj).__name__}, not an object")
    try:
        return model.model_validate(obj).model_dump(mode="json")
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in e.errors(include_url=False, include_input=False, include_context=False)[:5]
        )
        raise InvalidOutput(f"schema validation failed: {problems}") from None
