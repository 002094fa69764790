"""The deployment files, checked with what runs offline: the compose spec's JSON schema, Caddy itself
(adapt, and a live run proving who reaches what), the Helm chart's own value keys, yamllint,
shellcheck, and scripts/deploy against the stand-in server. Bicep cannot be compiled offline (the
bicep CLI downloads itself): main.bicep gets static checks only."""

import http.server
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from embedded.metadata import WMILL, stand_in
from tests.windmill.conftest import HERE, ROOT

BIN = Path(sys.executable).parent
DEPLOY = ROOT / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "vm" / "docker-compose.yml").read_text())
VALUES = yaml.safe_load((DEPLOY / "aks" / "values.yaml").read_text())
BICEP = (DEPLOY / "azure" / "main.bicep").read_text()
CLI_VERSION = json.loads((ROOT / "node_modules" / "windmill-cli" / "package.json").read_text())["version"]
ROLES = {"Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
         "Cognitive Services OpenAI User": "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"}


def tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is not installed in the venv (pip install -r requirements/local.txt)"
    return str(path)


# --- VM: docker compose and Caddy ----------------------------------------------------------------

def test_compose_file_follows_the_compose_spec():
    done = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                           str(DEPLOY / "vm" / "docker-compose.yml")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_is_locked_down():
    services = COMPOSE["services"]
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"caddy"} and set(services["caddy"]["ports"]) == {"80:80", "443:443"}
    text = (DEPLOY / "vm" / "docker-compose.yml").read_text()
    assert "docker.sock" not in text.replace("# no Docker socket", "")
    image = re.search(r"WM_IMAGE:-(\S+)}", text).group(1)
    assert image == f"ghcr.io/windmill-labs/windmill:{CLI_VERSION}", "pin the server to the CLI's version"
    workers = {n: s["environment"] for n, s in services.items() if isinstance(s.get("environment"), dict)
               and s["environment"].get("MODE") == "worker"}
    assert {env["WORKER_GROUP"] for env in workers.values()} == {"default", "extraction", "native"}
    assert workers["windmill_worker_extraction"]["WORKER_TAGS"] == "extraction"
    assert services["windmill_server"]["environment"]["BASE_URL"].startswith("https://")
    assert "expose" in services["windmill_server"] and "ports" not in services["db"]
    used = set(re.findall(r"\$\{(\w+)", text))
    example = {line.split("=")[0] for line in (DEPLOY / "vm" / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}
    assert used <= example | {"WM_EXTRA_TAG"}, used - example
    assert re.search(r"POSTGRES_PASSWORD:\?", text) and "POSTGRES_PASSWORD=\n" in (DEPLOY / "vm" / ".env.example").read_text()


def caddy_env(callers: str, operators: str) -> dict[str, str]:
    return os.environ | {"WINDMILL_DOMAIN": "windmill.example.com", "ACME_EMAIL": "ops@example.com",
                         "CALLER_CIDRS": callers, "OPERATOR_CIDRS": operators}


def test_caddyfile_adapts():
    done = subprocess.run([tool("caddy"), "adapt", "--config", str(DEPLOY / "vm" / "Caddyfile"), "--adapter", "caddyfile"],
                          capture_output=True, text=True, env=caddy_env("10.30.0.0/16", "10.20.0.0/16 203.0.113.7/32"))
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    server = next(iter(config["apps"]["http"]["servers"].values()))
    assert server["listen"] == [":443"]
    assert "203.0.113.7/32" in done.stdout and "windmill_server:8000" in done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def upstream() -> Iterator[int]:
    class Echo(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = f"upstream {self.path}".encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port
    server.shutdown()


def run_caddy(tmp: Path, upstream: int, callers: str, operators: str) -> tuple[subprocess.Popen[bytes], str]:
    """The real Caddyfile, served over plain HTTP on loopback with its upstreams pointed at `upstream`."""
    port = free_port()
    text = (DEPLOY / "vm" / "Caddyfile").read_text()
    text = text.replace("{\n\temail", "{\n\tadmin off\n\temail", 1).replace("{$WINDMILL_DOMAIN}", f"http://127.0.0.1:{port}")
    text = text.replace("windmill_server:8000", f"127.0.0.1:{upstream}").replace("windmill_extra:3001", f"127.0.0.1:{upstream}")
    (tmp / "Caddyfile").write_text(text)
    env = caddy_env(callers, operators) | {"XDG_DATA_HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp)}
    proc = subprocess.Popen([tool("caddy"), "run", "--config", str(tmp / "Caddyfile"), "--adapter", "caddyfile"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(url, timeout=1)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("caddy did not start")


CALLER_PATHS = ["/api/w/matters/jobs/run/f/f/matter/process_matter", "/api/w/matters/jobs/run_wait_result/f/f/matter/x",
                "/api/w/matters/jobs_u/get/0191", "/api/w/matters/jobs_u/completed/get_result_maybe/0191",
                "/api/r/matters/matter/process", "/api/version"]
OPERATOR_PATHS = ["/", "/api/w/matters/resources/get/f/matter/store", "/api/w/matters/jobs/list",
                  "/api/users/tokens/create", "/api/w/matters/variables/get_value/f/llm/key"]


@pytest.mark.parametrize("who", ["caller", "operator", "stranger"])
def test_caddy_lets_each_network_reach_only_its_paths(tmp_path, upstream, who):
    me, elsewhere = "127.0.0.1/32", "192.0.2.0/24"
    callers, operators = {"caller": (me, elsewhere), "operator": (elsewhere, me), "stranger": (elsewhere, elsewhere)}[who]
    proc, url = run_caddy(tmp_path, upstream, callers, operators)
    try:
        reach = {path: httpx.post(url + path).status_code == 200 for path in CALLER_PATHS + OPERATOR_PATHS}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    expected = {"caller": set(CALLER_PATHS), "operator": set(CALLER_PATHS + OPERATOR_PATHS), "stranger": set()}[who]
    assert {p for p, ok in reach.items() if ok} == expected


# --- AKS: Helm values ------------------------------------------------------------------------------

def chart_keys() -> tuple[set[str], set[str]]:
    """(key paths, free-form prefixes) of the chart's values.yaml, vendored in helm_chart_keys.txt."""
    keys, free = set(), {"windmill.workerGroups[].resources", "windmill.workerGroups[].podSecurityContext"}
    for line in (HERE / "helm_chart_keys.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            path, *mark = line.split()
            (free if mark else keys).add(path)
    return keys, free


def key_paths(node: Any, path: str = "") -> Iterator[str]:
    if isinstance(node, dict) and node:
        for k, v in node.items():
            yield from key_paths(v, f"{path}.{k}" if path else k)
    elif isinstance(node, list) and node and all(isinstance(i, dict) for i in node):
        for item in node:
            yield from key_paths(item, f"{path}[]")
    else:
        yield path


def test_helm_values_use_only_the_charts_keys():
    keys, free = chart_keys()
    unknown = [p for p in key_paths(VALUES) if p not in keys and not any(p == f or p.startswith(f + ".") or
                                                                          p.startswith(f + "[]") for f in free)]
    assert unknown == []


def test_helm_worker_groups():
    groups = {g["name"]: g for g in VALUES["windmill"]["workerGroups"]}
    assert {"default", "native", "extraction"} <= set(groups)
    env = {g: {e["name"]: e["value"] for e in groups[g].get("extraEnv", [])} for g in groups}
    assert env["extraction"]["WORKER_TAGS"] == "extraction" and groups["extraction"]["replicas"] >= 2
    assert env["extract-dedicated"]["DEDICATED_WORKER"].endswith(":f/matter/extract")
    for name in ("default", "extraction", "extract-dedicated"):  # they run our Python: blob and OpenAI access
        assert groups[name]["labels"]["azure.workload.identity/use"] == "true", name
    assert VALUES["windmill"]["tag"] == CLI_VERSION
    assert VALUES["postgresql"]["enabled"] is False and VALUES["windmill"]["databaseUrlSecretName"]
    sa = VALUES["serviceAccount"]
    assert "azure.workload.identity/client-id" in sa["annotations"]
    assert f"param kubernetesServiceAccount string = '{sa['name']}'" in BICEP


# --- Azure: Bicep (static) -----------------------------------------------------------------------

def test_bicep_grants_exactly_the_two_roles_on_the_narrowest_scopes():
    assert set(re.findall(r"'([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'", BICEP)) == set(ROLES.values())
    assert len(re.findall(r"Microsoft\.Authorization/roleAssignments@", BICEP)) == 2
    assert re.search(r"resource blobAccess [^{]+\{[^}]*scope: container", BICEP, re.S)
    assert re.search(r"resource openAiAccess [^{]+\{[^}]*scope: openAi\[i\]", BICEP, re.S)
    for setting in ("allowBlobPublicAccess: false", "allowSharedKeyAccess: false", "publicAccess: 'None'",
                    "minimumTlsVersion: 'TLS1_2'", "subject: 'system:serviceaccount:${kubernetesNamespace}:${kubernetesServiceAccount}'"):
        assert setting in BICEP, setting
    assert BICEP.count("{") == BICEP.count("}") and BICEP.count("[") == BICEP.count("]")


# --- Linters ---------------------------------------------------------------------------------------

def test_yaml_files_pass_yamllint():
    files = [*DEPLOY.rglob("*.y*ml"), *(ROOT / "flows").rglob("*.yaml"), *(ROOT / "resources").rglob("*.yaml"),
             *(ROOT / "f").rglob("*.http_trigger.yaml"), *(ROOT / "f").rglob("folder.meta.yaml"), ROOT / "wmill.yaml"]
    config = "{extends: relaxed, rules: {line-length: disable, trailing-spaces: enable, new-line-at-end-of-file: enable}}"
    done = subprocess.run([tool("yamllint"), "-s", "-d", config, *map(str, files)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_shell_scripts_pass_shellcheck():
    scripts = [ROOT / "scripts" / n for n in ("deploy", "serve", "trigger")] + [DEPLOY / "azure" / "deploy.sh"]
    done = subprocess.run([tool("shellcheck"), *map(str, scripts)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


# --- scripts/deploy ------------------------------------------------------------------------------

def test_deploy_plan_runs_with_windmills_cli():
    """scripts/deploy --dry-run against the stand-in: it lints, lists the sync, prints every push; each
    printed push is then run for real against the stand-in, so the CLI accepts its syntax and files."""
    server = stand_in()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WM")}
    env |= {"WM_BASE_URL": f"http://127.0.0.1:{server.server_port}", "WM_WORKSPACE": "matters", "WM_DEPLOY_TOKEN": "local"}
    try:
        done = subprocess.run([str(ROOT / "scripts" / "deploy"), "--env", "azure", "--dry-run"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        plan = [line[len("+ wmill "):].split() for line in done.stderr.splitlines() if line.startswith("+ wmill ")]
        kinds = [p[0] for p in plan]
        assert kinds.index("resource-type") < kinds.index("resource") < kinds.index("flow") < kinds.index("trigger")
        assert ["flow", "push", "flows/process_matter", "f/matter/process_matter"] in plan
        assert ["trigger", "push", "./f/matter/process_matter.http_trigger.yaml", "f/matter/process_matter"] in plan
        assert "skipping secret f/llm/aoai_sweden_key" in done.stderr
        with tempfile.TemporaryDirectory() as config:
            cli_env = env | {"BASE_URL": env["WM_BASE_URL"], "WM_TOKEN": "local", "WMILL_CONFIG_DIR": config}
            for args in plan:
                if args[0] != "sync":
                    pushed = subprocess.run([str(WMILL), *args], cwd=ROOT, env=cli_env, capture_output=True, text=True)
                    assert pushed.returncode == 0, f"wmill {' '.join(args)}: {pushed.stdout}{pushed.stderr}"
    finally:
        server.shutdown()
