import pytest

from embedded.chaos.scenarios import Corpus, make_corpus


@pytest.fixture(scope="session")
async def corpus(tmp_path_factory) -> Corpus:
    return await make_corpus(tmp_path_factory.mktemp("chaos-corpus-sec"))
