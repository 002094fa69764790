"""kill -9 of each stage's job process mid-run, then the flow again: the same result as an undisturbed run,
no finished LLM call paid again, no record lost or torn."""

import pytest

from embedded.chaos.lab import STAGES
from embedded.chaos.scenarios import kill_stage_row
from tests.reliability.conftest import check


@pytest.mark.parametrize("stage", STAGES)
async def test_kill_9_mid_stage_then_rerun(corpus, stage):
    row = await kill_stage_row(corpus, stage)
    check(row)
    assert row.checks["killed"] and row.checks["identical"] and row.checks["no_record_lost"]
