import uuid

import pytest

from embedded.moto import start_moto

KINDS = ["azure_blob", "s3"]


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    with start_moto(tmp_path_factory.mktemp("moto-logs")) as server:
        yield server


@pytest.fixture
def s3_config(moto) -> dict:
    """A fresh bucket per test, on the shared moto server."""
    return moto.store_config(f"t{uuid.uuid4().hex[:20]}")


@pytest.fixture(params=KINDS)
def any_store_config(request) -> dict:
    """The same test against Azurite and against moto."""
    return request.getfixturevalue("store_config" if request.param == "azure_blob" else "s3_config")
