import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from embedded.azurite import start_azurite  # noqa: E402


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    with start_azurite(None, tmp_path_factory.mktemp("azurite-logs")) as server:
        yield server


@pytest.fixture
def store_config(azurite) -> dict:
    """A fresh container per test, on the shared Azurite."""
    return {"container": f"t{uuid.uuid4().hex[:20]}", "connection_string": azurite.connection_string}
