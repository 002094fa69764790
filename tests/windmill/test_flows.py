"""The flows validate against Windmill's OpenFlow schema (the one the installed windmill-cli bundles,
generated from openflow.openapi.yaml), pass `wmill lint`, and agree with the scripts they call."""

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.windmill.conftest import FLOW_FOLDER, ROOT, flows, wmill

FLOWS = flows()
EXPR_KEYS = ("expr",)


@pytest.fixture(scope="session")
def openflow(cli_schemas) -> jsonschema.protocols.Validator:
    schema = {"$ref": "#/components/schemas/OpenFlow", "components": cli_schemas["openflow"]["components"]}
    return jsonschema.Draft7Validator(schema)


def errors(validator: jsonschema.protocols.Validator, doc: Any) -> list[str]:
    """Every error, with those inside oneOf branches (the module types) spelled out."""
    def flat(e: jsonschema.ValidationError) -> Iterator[str]:
        yield f"/{'/'.join(map(str, e.absolute_path))}: {e.message}"[:300]
        for sub in e.context or ():
            yield from flat(sub)
    return [line for e in validator.iter_errors(doc) for line in flat(e)]


def modules(mods: list[dict[str, Any]], in_loop: bool = False) -> Iterator[tuple[dict[str, Any], bool]]:
    """Every module, nested ones too, with whether it sits inside a loop."""
    for m in mods:
        yield m, in_loop
        v = m["value"]
        loop = v["type"] in ("forloopflow", "whileloopflow")
        yield from modules(v.get("modules", []), in_loop or loop)
        for branch in v.get("branches", []):
            yield from modules(branch.get("modules", []), in_loop)
        yield from modules(v.get("default", []), in_loop)


def all_modules(flow: dict[str, Any]) -> Iterator[tuple[dict[str, Any], bool]]:
    yield from modules(flow["value"]["modules"])
    if flow["value"].get("failure_module"):
        yield flow["value"]["failure_module"], False


def expressions(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in EXPR_KEYS and isinstance(v, str):
                yield v
            else:
                yield from expressions(v)
    elif isinstance(node, list):
        for v in node:
            yield from expressions(v)


@pytest.mark.parametrize("path", FLOWS)
def test_flow_validates_against_openflow(path, openflow):
    assert errors(openflow, FLOWS[path]) == []


def test_openflow_validation_catches_mistakes(openflow):
    flow = copy.deepcopy(FLOWS[f"{FLOW_FOLDER}/process_document"])
    loop = next(m for m, _ in all_modules(flow) if m["value"]["type"] == "forloopflow")
    del loop["value"]["skip_failures"]
    assert any("skip_failures" in e for e in errors(openflow, flow))
    broken = copy.deepcopy(FLOWS[f"{FLOW_FOLDER}/process_document"])
    broken["value"]["modules"][0]["value"]["type"] = "shellscript"
    assert errors(openflow, broken)
    del broken["summary"]
    assert any("summary" in e for e in errors(openflow, broken))


def test_wmill_lint_passes():
    for folder, at_least in (("flows", len(FLOWS)), ("f", 1)):
        done = wmill("lint", folder, "--json", "--fail-on-warn", stand_in_server=False)
        report = json.loads(done.stdout)
        assert done.returncode == 0 and report["success"], done.stdout
        assert report["validatedFiles"] >= at_least and report["invalidFiles"] == 0


def test_wmill_lint_fails_on_a_broken_flow(tmp_path: Path):
    flow = copy.deepcopy(FLOWS[f"{FLOW_FOLDER}/process_matter"])
    del flow["value"]["modules"][1]["value"]["iterator"]
    (tmp_path / "broken__flow").mkdir()
    (tmp_path / "broken__flow" / "flow.yaml").write_text(yaml.safe_dump(flow))
    done = wmill("lint", str(tmp_path), "--json", stand_in_server=False)
    assert done.returncode != 0 and "iterator" in done.stdout


@pytest.mark.parametrize("path", FLOWS)
def test_steps_call_existing_scripts_and_flows_with_their_arguments(path, parsed):
    for m, _ in all_modules(FLOWS[path]):
        v = m["value"]
        given = set(v.get("input_transforms", {}))
        if v["type"] == "script":
            source = ROOT / f"{v['path']}.py"
            assert source.is_file() and source.with_suffix(".script.yaml").is_file(), f"{m['id']}: {v['path']}"
            args = parsed[str(source.relative_to(ROOT))]["args"]
            params = {a["name"] for a in args}
            required = {a["name"] for a in args if not a["has_default"]}
            assert given <= params, f"{path} {m['id']}: {sorted(given - params)} are not main() parameters"
            assert required <= given, f"{path} {m['id']}: main() needs {sorted(required - given)}"
        elif v["type"] == "flow":
            assert v["path"] in FLOWS, f"{m['id']}: subflow {v['path']} not in flows/"
            schema = FLOWS[v["path"]]["schema"]
            assert given <= set(schema["properties"]), f"{path} {m['id']}: unknown inputs"
            assert set(schema.get("required", [])) <= given, f"{path} {m['id']}: missing required inputs"


def own_expressions(module: dict[str, Any]) -> Iterator[str]:
    """The expressions of a module itself, not of the modules nested in it."""
    value = {k: v for k, v in module["value"].items() if k not in ("modules", "branches", "default")}
    yield from expressions({**module, "value": value})
    for branch in module["value"].get("branches", []):
        yield from expressions({k: v for k, v in branch.items() if k != "modules"})


def check_sequence(path: str, mods: list[dict[str, Any]], inputs: set[str], earlier: set[str], in_loop: bool) -> None:
    seen = set(earlier)
    for m in mods:
        for expr in own_expressions(m):
            for name in re.findall(r"\bflow_input\.(\w+)", expr):
                assert name in inputs or (name == "iter" and in_loop), f"{path} {m['id']}: flow_input.{name}"
            for name in re.findall(r"\bresults\.(\w+)", expr):
                assert name in seen, f"{path} {m['id']}: results.{name} is not an earlier step"
        v = m["value"]
        loop = in_loop or v["type"] in ("forloopflow", "whileloopflow")
        for inner in [v.get("modules", []), v.get("default", []), *(b.get("modules", []) for b in v.get("branches", []))]:
            check_sequence(path, inner, inputs, seen, loop)
        seen.add(m["id"])


@pytest.mark.parametrize("path", FLOWS)
def test_expressions_use_declared_inputs_and_earlier_steps(path):
    flow = FLOWS[path]
    inputs = set(flow["schema"]["properties"])
    check_sequence(path, flow["value"]["modules"], inputs, set(), False)
    failure = flow["value"].get("failure_module")
    if failure:
        for expr in own_expressions(failure):
            assert set(re.findall(r"\bflow_input\.(\w+)", expr)) <= inputs, expr


@pytest.mark.parametrize("path", FLOWS)
def test_inputs_make_a_usable_form(path):
    """The auto-generated run form: every input described, every optional one with a default,
    resource inputs typed with a resource type that resources/types defines."""
    schema = FLOWS[path]["schema"]
    required = set(schema.get("required", []))
    assert schema.get("order") and set(schema["order"]) == set(schema["properties"])
    for name, prop in schema["properties"].items():
        assert prop.get("description"), f"{path}: input {name} has no description"
        assert name in required or "default" in prop, f"{path}: optional input {name} has no default"
        if str(prop.get("format", "")).startswith("resource-"):
            rt = prop["format"].removeprefix("resource-")
            assert (ROOT / "resources" / "types" / f"{rt}.resource-type.yaml").is_file(), f"{path}: {rt}"
