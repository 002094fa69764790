"""Each script's .script.yaml says what Windmill's own parser reads from its main(), and its lock is
the pinned runtime requirements. A main() edited without `scripts/gen-metadata` fails here."""

from typing import Any

import pytest
import yaml

from embedded.metadata import lock_text, summary
from tests.windmill.conftest import ROOT, scripts

SIMPLE = {"int": "integer", "float": "number", "bool": "boolean", "dict": "object", "list": "array",
          "str": "string", "datetime": "string", "date": "string", "bytes": "string"}


def expected_property(typ: Any) -> dict[str, Any]:
    """The JSON schema keys Windmill derives from a parser type (windmill-parser-py's Typ)."""
    if isinstance(typ, str):
        if typ not in SIMPLE:
            pytest.fail(f"parser type {typ!r} not mapped in this test")
        return {"type": SIMPLE[typ]}
    (kind, inner), = typ.items()
    if kind == "str":
        return {"type": "string", **({"enum": inner} if inner else {})}
    if kind == "list":
        return {"type": "array"}
    if kind == "resource":
        return {"type": "object", "format": f"resource-{inner}"}
    if kind in ("object", "dict"):
        return {"type": "object"}
    pytest.fail(f"parser type {typ!r} not mapped in this test")


def meta(script) -> dict[str, Any]:
    file = script.with_suffix(".script.yaml")
    assert file.is_file(), f"{file.relative_to(ROOT)} is missing: run scripts/gen-metadata"
    return yaml.safe_load(file.read_text())


@pytest.mark.parametrize("script", scripts(), ids=lambda p: str(p.relative_to(ROOT)))
def test_schema_matches_windmills_parse_of_main(script, parsed):
    rel = str(script.relative_to(ROOT))
    schema = meta(script)["schema"]
    args = parsed[rel]["args"]
    stale = f"{rel}: .script.yaml does not match main(); run scripts/gen-metadata"
    assert set(schema["properties"]) == {a["name"] for a in args}, stale
    assert schema["required"] == [a["name"] for a in args if not a["has_default"]], stale
    for arg in args:
        prop = schema["properties"][arg["name"]]
        for key, value in expected_property(arg["typ"]).items():
            assert prop.get(key) == value, f"{stale}: {arg['name']}.{key}"
        if arg["has_default"]:
            assert prop.get("default") == arg["default"], f"{stale}: default of {arg['name']}"


@pytest.mark.parametrize("script", scripts(), ids=lambda p: str(p.relative_to(ROOT)))
def test_metadata_lock_and_summary(script):
    data = meta(script)
    rel = script.relative_to(ROOT)
    assert data["kind"] == "script"
    assert data["lock"] == f"!inline {rel.with_suffix('.script.lock')}"
    assert script.with_suffix(".script.lock").read_text() == lock_text(), f"{rel}: lock differs from requirements/runtime.txt"
    assert data["summary"] == summary(script), f"{rel}: summary is not the docstring's first line"


def test_stage_scripts_have_a_main_and_shared_modules_none(parsed):
    """Every f/matter script is a stage with main(); the shared modules (no main) get an empty schema."""
    for script in scripts():
        rel = str(script.relative_to(ROOT))
        has_main = "\ndef main(" in script.read_text() or script.read_text().startswith("def main(")
        if rel.startswith("f/matter/"):
            assert has_main, f"{rel} has no main()"
        if not has_main:
            assert meta(script)["schema"]["properties"] == {}, rel


def test_no_package_files_or_orphan_metadata_under_f():
    assert not list((ROOT / "f").rglob("__init__.py")), "wmill sync would push __init__.py as a script"
    for yml in (ROOT / "f").rglob("*.script.yaml"):
        assert yml.with_name(yml.name.removesuffix(".script.yaml") + ".py").is_file(), f"orphan {yml}"


def test_parser_output_is_real(parsed):
    """The parser is Windmill's: a resource TypedDict arg is read as a resource, a default as such."""
    split = {a["name"]: a for a in parsed["f/matter/split.py"]["args"]}
    assert split["store"]["typ"] == {"resource": "matter_store"}
    assert split["chunk_pages"]["has_default"] and split["chunk_pages"]["typ"] == "int"
