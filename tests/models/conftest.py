"""Every test here needs the model packages (requirements/models.txt; scripts/setup installs them). Without
them the tests are skipped, except under CI=true, where a missing package fails: CI cannot pass by skipping."""

import os
from pathlib import Path

import pytest

from embedded.llamacpp import ModelsNotInstalled, check_installed

HERE = Path(__file__).parent


def _missing() -> str | None:
    try:
        check_installed()
    except ModelsNotInstalled as e:
        if os.environ.get("CI"):
            raise
        return str(e)
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = _missing()
    for item in items:
        if reason and item.path.parent == HERE:
            item.add_marker(pytest.mark.skip(reason=reason))
