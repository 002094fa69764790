"""copy-matter on a matter of 60+ objects: Azurite to moto and back, hashes verified, idempotent, bounded."""

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from f.core.copy_matter import copy_matter, copy_matter_between
from f.core.layout import MatterPaths
from f.core.storage import open_store

ROOT = Path(__file__).resolve().parents[2]
MATTER = MatterPaths("M-2024-0999")
OTHER = MatterPaths("M-other")


def matter_objects() -> dict[str, tuple[bytes, dict[str, str] | None]]:
    """3 documents of 21 objects each, and the rollup: sources with metadata (one past the spool limit)."""
    objects: dict[str, tuple[bytes, dict[str, str] | None]] = {}
    for d, size in [("letter", 40_000), ("contract", 300_000), ("scan", 2_500_000)]:
        doc = MATTER.doc(d)
        source = os.urandom(size)
        objects[doc.source] = (source, {"sha256": hashlib.sha256(source).hexdigest(), "source_name": f"{d}.pdf"})
        objects[doc.manifest] = (json.dumps({"doc": d, "pages": 8}).encode(), None)
        for n in range(1, 9):
            objects[doc.page(n)] = (json.dumps({"page": n, "text": "word " * n * 40}).encode(), None)
        for c in range(4):
            objects[doc.chunk(f"c{c}")] = (f'{{"chunk": {c}}}'.encode(), None)
            objects[doc.extraction(f"c{c}", f"h{c}")] = (os.urandom(500), None)
        objects[doc.result] = (b'{"fields": {}}', None)
    objects[MATTER.rollup] = (b'{"documents": 3}', None)
    return objects


async def read_all(store, prefix) -> dict[str, tuple[bytes, dict[str, str]]]:
    return {n: (await store.read(n), await store.metadata(n)) for n in await store.list_names(prefix)}


@pytest.fixture
async def azurite_matter(store_config):
    objects = matter_objects()
    async with open_store(store_config, "matters/", create_container=True) as store:
        for name, (data, meta) in objects.items():
            assert await store.create(name, data, metadata=meta)
        await store.put(OTHER.doc("x").source, b"another matter")
    assert len(objects) >= 50
    return store_config, objects


async def test_copy_azurite_to_moto_and_back(azurite_matter, s3_config, store_config):
    blob_cfg, objects = azurite_matter
    report = await copy_matter_between(blob_cfg, s3_config, MATTER.matter_id, create_target=True,
                                       concurrency=6, spool_bytes=1_000_000)
    assert report.ok, report
    assert (report.objects, report.copied, report.skipped) == (len(objects), len(objects), 0)
    assert report.bytes_copied == sum(len(d) for d, _ in objects.values())
    async with open_store(s3_config) as s3:
        copied = await read_all(s3, "")
    assert set(copied) == set(objects), "everything under the matter, nothing from another matter"
    for name, (data, meta) in objects.items():
        assert copied[name] == (data, meta or {}), name

    # And back, into an empty container: the same bytes and metadata as the original.
    back = dict(blob_cfg, container=f"b{uuid.uuid4().hex[:20]}")
    report = await copy_matter_between(s3_config, back, MATTER.matter_id, create_target=True)
    assert report.ok and report.copied == len(objects)
    async with open_store(back) as blob:
        assert await read_all(blob, "") == {n: (d, m or {}) for n, (d, m) in objects.items()}


async def test_a_second_copy_skips_what_is_there_and_reports_what_differs(azurite_matter, s3_config):
    blob_cfg, objects = azurite_matter
    assert (await copy_matter_between(blob_cfg, s3_config, MATTER.matter_id, create_target=True)).ok
    again = await copy_matter_between(blob_cfg, s3_config, MATTER.matter_id)
    assert (again.copied, again.skipped, again.bytes_copied) == (0, len(objects), 0) and again.ok

    letter, contract = MATTER.doc("letter"), MATTER.doc("contract")
    async with open_store(s3_config, MATTER.prefix) as s3:
        await s3.delete(letter.page(3))  # an interrupted copy: finished by the next run
        await s3.put(letter.result, b"edited at the target")  # other bytes: reported, kept
        await s3.put(contract.source, objects[contract.source][0])  # same bytes, metadata lost: reported
    partial = await copy_matter_between(blob_cfg, s3_config, MATTER.matter_id)
    assert partial.copied == 1 and partial.skipped == len(objects) - 3
    assert partial.mismatched == sorted([letter.result, contract.source]) and not partial.ok
    async with open_store(s3_config) as s3:
        assert await s3.read(letter.result) == b"edited at the target"

    forced = await copy_matter_between(blob_cfg, s3_config, MATTER.matter_id, overwrite=True)
    assert forced.ok and forced.replaced == 2
    async with open_store(s3_config) as s3:
        assert await s3.read(letter.result) == objects[letter.result][0]
        assert await s3.metadata(contract.source) == objects[contract.source][1]


async def test_concurrency_is_bounded(azurite_matter, s3_config):
    blob_cfg, objects = azurite_matter
    in_flight = peak = 0
    async with open_store(blob_cfg) as src, open_store(s3_config, MATTER.prefix, create_container=True) as dst:
        real = src.download_to

        async def counted(name, file):
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                return await real(name, file)
            finally:
                in_flight -= 1

        src.download_to = counted
        report = await copy_matter(src, dst, MATTER.matter_id, concurrency=3)
    assert report.ok and report.copied == len(objects)
    assert peak == 3


def test_the_command_line(azurite_matter, s3_config, tmp_path):
    blob_cfg, objects = azurite_matter
    source_file = tmp_path / "store.resource.yaml"
    source_file.write_text(json.dumps({"resource_type": "matter_store", "value": dict(
        blob_cfg, connection_string="$var:f/matter/blob_connection_string")}))
    command = [sys.executable, "-m", "embedded.copy_matter", "--from", str(source_file), "--to", json.dumps(s3_config),
               "--matter", MATTER.matter_id, "--create-target", "--concurrency", "4"]
    missing = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "F_MATTER_BLOB_CONNECTION_STRING" in missing.stderr

    env = os.environ | {"F_MATTER_BLOB_CONNECTION_STRING": blob_cfg["connection_string"]}
    run = subprocess.run(command, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["copied"] == len(objects) and not report["failed"]
    assert f"{len(objects)} objects, {len(objects)} copied" in run.stderr
