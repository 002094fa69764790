"""Resource types are JSON schemas; every example resource's value validates against its type; every
$var:/$res: reference resolves; no secret value is committed for a real environment."""

import re
from typing import Any

import jsonschema
import pytest
import yaml

from embedded.services import BLOB_VARIABLE, S3_VARIABLE, backend_url_variable
from embedded.llamacpp import LOCAL_MODELS
from embedded.simpool import default_sim_specs
from tests.windmill.conftest import ROOT, flows, scripts

TYPES = {f.name.removesuffix(".resource-type.yaml"): yaml.safe_load(f.read_text())
         for f in sorted((ROOT / "resources" / "types").glob("*.resource-type.yaml"))}
ENVS = sorted(p.name for p in (ROOT / "resources").iterdir() if p.is_dir() and p.name != "types")
RUNTIME_VARIABLES = {"local": {BLOB_VARIABLE, S3_VARIABLE, *(backend_url_variable(s.name) for s in default_sim_specs()),
                               *(backend_url_variable(m.name) for m in LOCAL_MODELS)}}
REF = re.compile(r"^\$(var|res):(\S+)$")


def items(env: str, kind: str) -> dict[str, dict[str, Any]]:
    base = ROOT / "resources" / env
    return {str(f.relative_to(base)).removesuffix(f".{kind}.yaml"): yaml.safe_load(f.read_text())
            for f in sorted(base.rglob(f"*.{kind}.yaml"))}


def refs(value: Any) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [m.groups()] if (m := REF.match(value)) else []  # type: ignore[list-item]
    if isinstance(value, dict):
        return [r for v in value.values() for r in refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in refs(v)]
    return []


def test_the_types_we_use_exist():
    assert {"matter_store", "llm_pool"} <= set(TYPES)
    for name, rt in TYPES.items():
        assert rt.get("description"), name
        jsonschema.Draft202012Validator.check_schema(rt["schema"])


@pytest.mark.parametrize("env", ENVS)
def test_resources_validate_against_their_types(env):
    resources = items(env, "resource")
    assert {"f/matter/store", "f/llm/pool"} <= set(resources)
    for path, res in resources.items():
        assert res["resource_type"] in TYPES, f"{env}/{path}: unknown type {res['resource_type']}"
        validator = jsonschema.Draft202012Validator(TYPES[res["resource_type"]]["schema"])
        problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(res["value"])]
        assert problems == [], f"{env}/{path}"


def test_the_pool_type_offers_every_setting_the_client_reads():
    from f.llm.pool import BackendConfig, LLMPool

    schema = TYPES["llm_pool"]["schema"]
    assert set(schema["properties"]) == set(LLMPool.model_fields)
    assert set(schema["properties"]["backends"]["items"]["properties"]) == set(BackendConfig.model_fields)


def test_type_validation_catches_a_bad_resource():
    bad = {"backends": [{"name": "x", "kind": "bedrock", "base_url": "http://x", "model": "m"}]}
    assert list(jsonschema.Draft202012Validator(TYPES["llm_pool"]["schema"]).iter_errors(bad))


@pytest.mark.parametrize("env", ENVS)
def test_references_resolve(env):
    resources, variables = items(env, "resource"), items(env, "variable")
    known_vars = set(variables) | RUNTIME_VARIABLES.get(env, set())
    for path, res in resources.items():
        for kind, target in refs(res["value"]):
            assert target in (known_vars if kind == "var" else resources), f"{env}/{path}: ${kind}:{target}"
    for flow_path, flow in flows().items():  # the flows' default resources exist in every environment
        for name, prop in flow["schema"]["properties"].items():
            for kind, target in refs(prop.get("default")):
                assert kind == "res" and target in resources, f"{flow_path} input {name}: {target} not in {env}"
                assert prop["format"] == f"resource-{resources[target]['resource_type']}", f"{flow_path} {name}"


def test_no_real_secret_is_committed():
    for env in ENVS:
        for path, var in items(env, "variable").items():
            if var.get("is_secret") and env != "local":
                assert var["value"] == "", f"{env}/{path}: a secret's value belongs in the workspace, not in git"
            if env == "local":
                assert str(var["value"]).startswith("sim-"), f"local/{path}: only simulator stand-ins here"


def test_script_resource_arguments_use_defined_types(parsed):
    for script in scripts():
        for arg in parsed[str(script.relative_to(ROOT))]["args"]:
            if isinstance(arg["typ"], dict) and "resource" in arg["typ"]:
                assert arg["typ"]["resource"] in TYPES, f"{script}: {arg['name']}: {arg['typ']}"
