"""The storage contract: every test here runs against Azurite and against moto's S3, through open_store."""

import asyncio
import hashlib
import io
import os
import time

import pytest

from embedded.azurite import connection_string as azurite_connection_string
from f.core.ids import InvalidId, check_id, id_from_filename
from f.core.layout import DocPaths, MatterPaths
from f.core.storage import (
    BlobStore,
    Conflict,
    InvalidPath,
    NotFound,
    OutsideScope,
    load_store_config,
    open_store,
)
from f.core.store_config import AzureBlobConfig, S3Config


@pytest.fixture
async def store(any_store_config):
    async with open_store(any_store_config, "matters/m1/", create_container=True) as s:
        yield s


async def test_the_resource_kind_picks_the_backend(store, any_store_config):
    assert isinstance(store, BlobStore)
    expected = "S3Store" if any_store_config.get("kind") == "s3" else "AzureBlobStore"
    assert type(store).__name__ == expected


async def test_conditional_create_keeps_the_first_writer(store):
    results = await asyncio.gather(*(store.create("matters/m1/d/x.json", f"writer {i}") for i in range(8)))
    assert results.count(True) == 1
    winner = results.index(True)
    assert await store.read("matters/m1/d/x.json") == f"writer {winner}".encode()
    assert await store.create("matters/m1/d/x.json", b"late") is False
    assert await store.read("matters/m1/d/x.json") == f"writer {winner}".encode()


async def test_metadata_is_set_on_create_and_kept_by_a_losing_create(store):
    meta = {"sha256": "a" * 64, "source_name": "Engagement Letter (v2).pdf"}
    assert await store.create("matters/m1/d/source.pdf", b"%PDF-1.7", metadata=meta)
    assert await store.create("matters/m1/d/source.pdf", b"other", metadata={"sha256": "b" * 64}) is False
    assert await store.metadata("matters/m1/d/source.pdf") == meta
    await store.put("matters/m1/d/put.bin", b"x", metadata={"k": "v"})
    assert await store.metadata("matters/m1/d/put.bin") == {"k": "v"}
    await store.put("matters/m1/d/put.bin", b"y")  # a put without metadata leaves none
    assert await store.metadata("matters/m1/d/put.bin") == {}
    with pytest.raises(NotFound):
        await store.metadata("matters/m1/d/missing")


@pytest.mark.parametrize("meta", [{"Upper": "x"}, {"a-b": "x"}, {"k": "é"}, {"k": "line\nbreak"}, {"k": "x" * 2100}])
async def test_metadata_both_services_would_not_return_unchanged_is_refused(store, meta):
    with pytest.raises(ValueError):
        await store.create("matters/m1/meta.bin", b"x", metadata=meta)
    assert not await store.exists("matters/m1/meta.bin")


async def test_compare_and_swap_rejects_a_stale_etag(store):
    await store.create("matters/m1/r.json", b"v1")
    _, etag = await store.read_with_etag("matters/m1/r.json")
    new_etag = await store.replace("matters/m1/r.json", b"v2", etag)
    with pytest.raises(Conflict):
        await store.replace("matters/m1/r.json", b"v3", etag)
    assert (await store.read_with_etag("matters/m1/r.json")) == (b"v2", new_etag)
    await store.replace("matters/m1/r.json", b"v3", new_etag)
    assert await store.read("matters/m1/r.json") == b"v3"
    with pytest.raises(Conflict):
        await store.replace("matters/m1/never-written.json", b"v1", new_etag)
    with pytest.raises(NotFound):
        await store.read_with_etag("matters/m1/never-written.json")


async def test_compare_and_swap_loses_no_update_under_contention(store):
    path = "matters/m1/counter"
    await store.create(path, b"0")

    async def bump() -> int:
        losses = 0
        while True:
            data, etag = await store.read_with_etag(path)
            try:
                await store.replace(path, str(int(data) + 1), etag)
                return losses
            except Conflict:
                losses += 1

    losses = await asyncio.gather(*(bump() for _ in range(12)))
    assert await store.read(path) == b"12"
    assert sum(losses) > 0, "the bumps should have contended"


async def test_writes_outside_the_scope_are_refused(store):
    for path in ["matters/m2/x", "matters/m1/../m2/x", "matters/m1/./x", "/matters/m1/x", "other"]:
        with pytest.raises(OutsideScope):
            await store.put(path, b"x")
        with pytest.raises(OutsideScope):
            await store.create(path, b"x")
        with pytest.raises(OutsideScope):
            await store.delete(path)
    assert await store.list_names("") == []


@pytest.mark.parametrize("path", ["matters/m1//x", "matters/m1/x/", "matters/m1/a\\b", "matters/m1/a\x00b",
                                  "matters/m1/" + "x" * 1100])
async def test_names_a_service_would_alter_are_refused(store, path):
    with pytest.raises(InvalidPath):
        await store.put(path, b"x")
    with pytest.raises(InvalidPath):
        await store.read(path)


async def test_prefix_listing_pages_through_everything_in_byte_order(store):
    names = [f"matters/m1/a/{i:03d}.json" for i in range(11)] + ["matters/m1/ab/x", "matters/m1/b/y", "matters/m1/r"]
    await asyncio.gather(*(store.put(n, b"{}") for n in names))
    store.page_size = 4  # several pages per listing, on both services
    assert await store.list_names("matters/m1/") == sorted(names)
    assert await store.list_names("matters/m1/a/") == names[:11]
    assert await store.list_names("matters/m1/a") == sorted(names[:12])
    assert await store.list_dirs("matters/m1/") == ["a", "ab", "b"]
    assert await store.list_dirs("matters/m1/zzz/") == []
    assert await store.list_names("") == sorted(names)


async def test_range_reads_are_cut_at_the_end(store):
    await store.put("matters/m1/s.pdf", b"0123456789")
    assert await store.read_range("matters/m1/s.pdf", 2, 3) == b"234"
    assert await store.read_range("matters/m1/s.pdf", 8, 10) == b"89"
    assert await store.read_range("matters/m1/s.pdf", 10, 5) == b""
    assert await store.read_range("matters/m1/s.pdf", 50, 5) == b""
    assert await store.read_range("matters/m1/s.pdf", 3, 0) == b""
    for offset, length in [(0, 1), (0, 0)]:
        with pytest.raises(NotFound):
            await store.read_range("matters/m1/missing", offset, length)


async def test_download_streams_a_large_object_to_a_file(store, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    with open(tmp_path / "up", "w+b") as up:
        up.write(data)
        up.seek(0)
        assert await store.create("matters/m1/big.pdf", up, metadata={"sha256": hashlib.sha256(data).hexdigest()})
    with open(tmp_path / "down", "wb") as down:
        assert await store.download_to("matters/m1/big.pdf", down) == len(data)
    assert (tmp_path / "down").read_bytes() == data
    assert await store.read_range("matters/m1/big.pdf", 3 * 1024 * 1024, 100) == data[3 * 1024 * 1024:][:100]
    with pytest.raises(NotFound):
        await store.download_to("matters/m1/none.pdf", io.BytesIO())


async def test_delete_exists_and_missing(store):
    await store.put("matters/m1/f.json", '{"a": 1}')
    assert await store.exists("matters/m1/f.json")
    assert await store.read_json("matters/m1/f.json") == {"a": 1}
    assert await store.delete("matters/m1/f.json") is True
    assert await store.delete("matters/m1/f.json") is False
    assert not await store.exists("matters/m1/f.json")
    with pytest.raises(NotFound):
        await store.read("matters/m1/f.json")


async def test_every_request_has_a_timeout(any_store_config):
    """A server that accepts and never answers: the store gives up after its bounded attempts."""
    accepted, done = [], asyncio.Event()

    async def silent(reader, writer):
        accepted.append(writer)
        await done.wait()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cfg = dict(any_store_config, read_timeout_s=0.3, connect_timeout_s=1, attempts=2, retry_backoff_s=0)
    if cfg.get("kind") == "s3":
        cfg["endpoint_url"] = f"http://127.0.0.1:{port}"
    else:
        cfg["connection_string"] = azurite_connection_string(port)
    started = time.monotonic()
    try:
        async with open_store(cfg, "matters/m1/") as blob:
            with pytest.raises(Exception) as raised:
                await blob.read("matters/m1/x")
        assert not isinstance(raised.value, (NotFound, AssertionError))
    finally:
        done.set()
        server.close()
    assert time.monotonic() - started < 15
    assert len(accepted) == 2, "one try and one retry, no more"


def test_store_config_names_the_problem():
    with pytest.raises(ValueError, match="connection_string or account_url"):
        load_store_config({"container": "abc"})
    with pytest.raises(ValueError, match="container"):
        load_store_config({"container": "Bad_Name", "connection_string": "x"})
    with pytest.raises(ValueError, match="both access_key_id and secret_access_key"):
        load_store_config({"kind": "s3", "bucket": "matters", "access_key_id": "a"})
    with pytest.raises(ValueError, match="bucket"):
        load_store_config({"kind": "s3", "bucket": "Bad_Bucket"})
    with pytest.raises(ValueError):
        load_store_config({"kind": "gcs", "bucket": "matters"})


def test_store_config_defaults_and_empty_fields():
    azure = load_store_config({"container": "matters", "account_url": "https://a.blob.core.windows.net",
                               "managed_identity_client_id": ""})
    assert isinstance(azure, AzureBlobConfig) and azure.managed_identity_client_id is None
    s3 = load_store_config({"kind": "s3", "bucket": "matters", "access_key_id": "", "secret_access_key": "",
                            "endpoint_url": "", "workspace_storage": "_default_"})
    assert isinstance(s3, S3Config) and s3.access_key_id is None and s3.endpoint_url is None
    assert s3.region == "us-east-1" and s3.workspace_storage == "_default_" and s3.attempts == 4
    assert "hunter2" not in repr(load_store_config({"kind": "s3", "bucket": "matters", "access_key_id": "a",
                                                    "secret_access_key": "hunter2"}))


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


def test_the_resource_type_describes_both_configs():
    """resources/types/matter_store.resource-type.yaml offers exactly the fields the two configs read,
    and its schema accepts what they accept (the local resources) and refuses a bucket-less S3 store."""
    from pathlib import Path

    import jsonschema
    import yaml

    root = Path(__file__).resolve().parents[2]
    schema = yaml.safe_load((root / "resources/types/matter_store.resource-type.yaml").read_text())["schema"]
    assert set(schema["properties"]) == set(AzureBlobConfig.model_fields) | set(S3Config.model_fields)
    validator = jsonschema.Draft202012Validator(schema)
    for name in ("store", "store_s3"):
        value = yaml.safe_load((root / f"resources/local/f/matter/{name}.resource.yaml").read_text())["value"]
        assert not list(validator.iter_errors(value)), name
        load_store_config({k: ("http://x" if str(v).startswith("$var:") else v) for k, v in value.items()})
    assert list(validator.iter_errors({"kind": "s3", "container": "matters"}))
    assert list(validator.iter_errors({"container": "matters", "colour": "blue"}))
