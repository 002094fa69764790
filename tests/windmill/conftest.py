"""Windmill's own tools, run on this repository: its Python parser and CLI (node), and the schemas the
CLI validates with. The CLI talks to the loopback stand-in server of embedded.metadata."""

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from embedded.metadata import WMILL, stand_in

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")
FLOW_FOLDER = "f/matter"  # flows/<name>/flow.yaml is pushed as f/matter/<name>


def scripts() -> list[Path]:
    """Every Windmill script of the repo: each .py under f/ (shared modules included)."""
    return sorted(p for p in (ROOT / "f").rglob("*.py") if "__pycache__" not in p.parts)


def flows() -> dict[str, dict[str, Any]]:
    """Workspace path -> parsed flow.yaml."""
    return {f"{FLOW_FOLDER}/{f.parent.name}": yaml.safe_load(f.read_text())
            for f in sorted((ROOT / "flows").glob("*/flow.yaml"))}


def node(script: str, *args: str) -> Any:
    done = subprocess.run(["node", str(HERE / script), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wmill(*args: str, cwd: Path = ROOT, stand_in_server: bool = True) -> subprocess.CompletedProcess[str]:
    """The wmill CLI (colors stripped from its output), against the stand-in server unless told not to."""
    server = stand_in() if stand_in_server else None
    remote = ["--base-url", f"http://127.0.0.1:{server.server_port}", "--token", "local", "--workspace",
              "matters"] if server else []
    try:
        with tempfile.TemporaryDirectory() as config_dir:
            done = subprocess.run([str(WMILL), *args, *remote], cwd=cwd, capture_output=True, text=True, timeout=300,
                                  env=os.environ | {"WMILL_CONFIG_DIR": config_dir})
    finally:
        if server:
            server.shutdown()
    done.stdout, done.stderr = ANSI.sub("", done.stdout), ANSI.sub("", done.stderr)
    return done


@pytest.fixture(scope="session")
def parsed() -> dict[str, dict[str, Any]]:
    """Relative path -> windmill-parser-wasm-py's parse of the file."""
    files = [str(p.relative_to(ROOT)) for p in scripts()]
    return node("parse_py.mjs", *files)


@pytest.fixture(scope="session")
def cli_schemas() -> dict[str, Any]:
    return node("cli_schemas.mjs")


@pytest.fixture
def scratch_repo(tmp_path: Path) -> Iterator[Path]:
    """A copy of the repo's Windmill files (wmill.yaml, f/, flows/), to break on purpose."""
    for name in ("wmill.yaml", "wmill-lock.yaml"):
        if (ROOT / name).exists():
            (tmp_path / name).write_text((ROOT / name).read_text())
    for folder in ("f", "flows"):
        for src in (ROOT / folder).rglob("*"):
            if src.is_file() and "__pycache__" not in src.parts:
                dst = tmp_path / src.relative_to(ROOT)
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(src.read_bytes())
    yield tmp_path
