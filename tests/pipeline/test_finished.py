"""A document counts as finished for a run's settings only when its result is current for them."""

from datetime import timedelta

import pytest

from f.core.layout import MatterPaths
from f.core.models import DocumentResult, FailureRecord, MergedRecord, utcnow
from f.core.storage import open_store
from f.pipeline.finished import inputs_key, is_finished, unfinished

MATTER = MatterPaths("M-FINISHED")
KEY = inputs_key(3, 2, 400)


@pytest.fixture
async def store(store_config):
    async with open_store(store_config, MATTER.prefix, create_container=True) as blob:
        yield blob


async def write(store, doc_id, *, key=KEY, merged_at=None, result_at=None, failure_at=None, needs_review=False):
    doc = MATTER.doc(doc_id)
    now = utcnow()
    if key is not None:
        await store.put_model(doc.merged, MergedRecord(matter_id=MATTER.matter_id, doc_id=doc_id, calls=3,
                                                       calls_failed=0, fields={}, field_samples={}, inputs=key,
                                                       at=merged_at or now))
    if result_at is not None:
        await store.put_model(doc.result, DocumentResult(matter_id=MATTER.matter_id, doc_id=doc_id,
                                                         source_name=f"{doc_id}.pdf", needs_review=needs_review,
                                                         at=result_at))
    if failure_at is not None:
        await store.put_model(doc.failure, FailureRecord(matter_id=MATTER.matter_id, doc_id=doc_id, step="split",
                                                         error="boom", at=failure_at))
    return doc


def test_the_key_changes_with_every_setting():
    keys = {inputs_key(3, 2, 400), inputs_key(1, 2, 400), inputs_key(3, 1, 400), inputs_key(3, 2, 0)}
    assert len(keys) == 4 and inputs_key(3, 2, 400) == KEY


async def test_finished_only_when_the_result_is_current(store):
    t = utcnow()
    done = await write(store, "done", merged_at=t, result_at=t + timedelta(seconds=1))
    assert await is_finished(store, done, KEY)
    assert not await is_finished(store, done, inputs_key(1, 2, 400)), "other settings"
    assert not await is_finished(store, await write(store, "never-merged", key=None), KEY)
    assert not await is_finished(store, await write(store, "not-scored", merged_at=t), KEY)
    stale = await write(store, "stale", merged_at=t + timedelta(seconds=5), result_at=t)
    assert not await is_finished(store, stale, KEY), "merged again (other settings) after the result"
    failed = await write(store, "failed", merged_at=t, result_at=t + timedelta(seconds=1),
                         failure_at=t + timedelta(seconds=2))
    assert not await is_finished(store, failed, KEY), "the last run failed"
    review = await write(store, "review", merged_at=t, result_at=t + timedelta(seconds=1), needs_review=True)
    assert await is_finished(store, review, KEY) and not await is_finished(store, review, KEY, review=True)
    todo = await unfinished(store, [MATTER.doc(d) for d in ("done", "failed", "never-merged", "review")], KEY)
    assert todo == ["failed", "never-merged"]
