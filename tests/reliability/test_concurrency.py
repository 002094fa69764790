"""Two runs at once: one consistent result, no torn records, every LLM call paid once (claims decide)."""

import pytest

from embedded.chaos.scenarios import concurrent_row
from tests.reliability.conftest import check


@pytest.mark.parametrize("what", ["document", "matter"])
async def test_two_concurrent_runs(corpus, what):
    row = await concurrent_row(corpus, what)
    check(row)
    assert row.checks["one_record_per_call"] and row.checks["untorn"]
