"""Throwaway workspaces for the runner tests: scripts under f/t/, flows under flows/<name>/."""

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from embedded.runner import Workspace

Put = Callable[[dict[str, str]], None]


@pytest.fixture
def put(tmp_path: Path) -> Put:
    """Write {relative path: text} into the workspace root (text is dedented)."""

    def write(files: dict[str, str]) -> None:
        for rel, text in files.items():
            file = tmp_path / rel
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(textwrap.dedent(text).lstrip("\n"))

    return write


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path, flow_folder="f/matter")
