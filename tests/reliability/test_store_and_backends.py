"""The store and the model backends failing under a running matter."""

from embedded.chaos.scenarios import (
    all_backends_down_row,
    azurite_restart_row,
    hangs_and_drips_row,
    malformed_replies_row,
    one_backend_down_row,
)
from tests.reliability.conftest import check

ALL_DOWN_S = 20.0  # scripts/chaos runs 30 s; here 20 s, to keep the suite within its time (README.md, "The fault matrix")


async def test_azurite_stopped_and_restarted_mid_run(corpus):
    check(await azurite_restart_row(corpus))


async def test_one_backend_down_for_the_whole_run(corpus):
    row = await one_backend_down_row(corpus)
    check(row)
    assert row.recover_s == 0.0  # nothing to recover from: the run completed on the others


async def test_all_backends_down_then_a_rerun_completes(corpus):
    row = await all_backends_down_row(corpus, ALL_DOWN_S)
    check(row)
    assert row.recover_s is not None and row.recover_s >= ALL_DOWN_S


async def test_hanging_calls_and_slow_drips_time_out_and_go_elsewhere(corpus):
    check(await hangs_and_drips_row(corpus))


async def test_malformed_and_schema_invalid_replies(corpus):
    row = await malformed_replies_row(corpus)
    check(row)
    assert row.checks["repaired"] and row.checks["reasked"] and row.checks["invalid_means_lower_confidence"]
