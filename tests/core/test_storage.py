import asyncio

import pytest

from f.core.ids import InvalidId, check_id, id_from_filename
from f.core.layout import DocPaths, MatterPaths
from f.core.storage import Conflict, NotFound, OutsideScope, StoreConfig, open_store


async def test_conditional_create_keeps_the_first_writer(store_config):
    async with open_store(store_config, "matters/m1/", create_container=True) as store:
        results = await asyncio.gather(*(store.create("matters/m1/d/x.json", f"writer {i}") for i in range(8)))
        assert results.count(True) == 1
        winner = results.index(True)
        assert await store.read("matters/m1/d/x.json") == f"writer {winner}".encode()


async def test_compare_and_swap_rejects_a_stale_etag(store_config):
    async with open_store(store_config, "matters/m1/", create_container=True) as store:
        await store.create("matters/m1/r.json", b"v1")
        _, etag = await store.read_with_etag("matters/m1/r.json")
        new_etag = await store.replace("matters/m1/r.json", b"v2", etag)
        with pytest.raises(Conflict):
            await store.replace("matters/m1/r.json", b"v3", etag)
        await store.replace("matters/m1/r.json", b"v3", new_etag)
        assert await store.read("matters/m1/r.json") == b"v3"


async def test_writes_outside_the_scope_are_refused(store_config):
    async with open_store(store_config, "matters/m1/", create_container=True) as store:
        for path in ["matters/m2/x", "matters/m1/../m2/x", "/matters/m1/x", "other"]:
            with pytest.raises(OutsideScope):
                await store.put(path, b"x")
        assert await store.list_names("") == []


async def test_listing_ranges_and_missing(store_config):
    async with open_store(store_config, "matters/m/", create_container=True) as store:
        for doc in ["a", "b"]:
            await store.put(f"matters/m/{doc}/source.pdf", b"0123456789")
        await store.put("matters/m/rollup.json", b"{}")
        assert await store.list_dirs("matters/m/") == ["a", "b"]
        assert await store.read_range("matters/m/a/source.pdf", 2, 3) == b"234"
        with pytest.raises(NotFound):
            await store.read("matters/m/zzz")


def test_store_config_names_the_problem():
    with pytest.raises(ValueError, match="connection_string or account_url"):
        StoreConfig(container="abc")
    with pytest.raises(ValueError, match="container"):
        StoreConfig(container="Bad_Name", connection_string="x")


@pytest.mark.parametrize("bad", ["..", "a/b", "/abs", "a\x00b", "x" * 65, "", "é", ".hidden", "a..b"])
def test_ids_are_single_safe_segments(bad):
    with pytest.raises(InvalidId):
        check_id(bad)
    with pytest.raises(InvalidId):
        MatterPaths(bad)


def test_layout_stays_under_the_matter():
    doc = DocPaths("M-1", "letter")
    assert doc.source == "matters/M-1/letter/source.pdf"
    assert doc.page(3) == "matters/M-1/letter/pages/00003.json"
    assert MatterPaths("M-1").owns(doc.result)
    assert id_from_filename("Engagement Letter (v2).pdf") == "Engagement-Letter-v2"
    assert id_from_filename("../../etc/passwd") == "passwd"
