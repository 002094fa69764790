"""The chaos scenarios (embedded/chaos) as tests: one test per row of `scripts/chaos`.

Each scenario starts its own Azurite and simulated pool and runs the real flows through the local runner,
so each takes seconds; the sample documents and their undisturbed baseline are made once per session.
"""

import pytest

from embedded.chaos.scenarios import Corpus, Row, make_corpus


@pytest.fixture(scope="session")
async def corpus(tmp_path_factory) -> Corpus:
    return await make_corpus(tmp_path_factory.mktemp("chaos-corpus"))


def check(row: Row) -> None:
    """Fail with what happened and which checks broke."""
    print(f"\n{row.scenario}: {row.what} ({row.seconds}s)")
    failed = [name for name, ok in row.checks.items() if not ok]
    assert row.lost == 0, f"{row.lost} documents lost: {row.what}"
    assert row.paid_twice == 0, f"{row.paid_twice} LLM calls paid twice: {row.what}"
    assert row.ok and not failed, f"failed checks {failed}: {row.what}"
