"""Copy a matter from one store to another (Blob to S3 or back), verifying every object's sha256 afterwards.

Idempotent: an object already at the target with the same bytes and metadata is skipped, so an
interrupted copy is finished by running it again. An object at the target with other content is
reported, and replaced only when asked to. Objects stream through a spooled temporary file (in memory
up to `spool_bytes`, on disk past it), at most `concurrency` at a time.
"""

import asyncio
import hashlib
import io
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

from pydantic import BaseModel

from f.core.layout import MatterPaths
from f.core.storage import BlobStore, NotFound, open_store
from f.core.store_config import AzureBlobConfig, S3Config

log = logging.getLogger(__name__)
SPOOL_BYTES = 8 * 1024 * 1024
Outcome = Literal["copied", "skipped", "replaced", "mismatch", "failed"]


class CopyReport(BaseModel):
    matter_id: str
    objects: int
    copied: int
    replaced: int
    skipped: int
    bytes_copied: int
    mismatched: list[str]  # at the target with other content or metadata, left as they were
    failed: list[str]  # "name: reason"

    @property
    def ok(self) -> bool:
        return not self.mismatched and not self.failed


class _Hasher:
    """A write-only file that only hashes and counts (the target side of a verification)."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> int:
        self.sha.update(chunk)
        self.size += len(chunk)
        return len(chunk)


class _Spool(_Hasher):
    """Hashes what it keeps: in memory up to a limit, then in a temporary file."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.file: BinaryIO = io.BytesIO()

    def write(self, chunk: bytes) -> int:
        if isinstance(self.file, io.BytesIO) and self.size + len(chunk) > self.limit:
            disk = tempfile.TemporaryFile()
            disk.write(self.file.getvalue())
            self.file = disk
        self.file.write(chunk)
        return super().write(chunk)

    def rewound(self) -> BinaryIO:
        self.file.seek(0)
        return self.file

    def close(self) -> None:
        self.file.close()


@dataclass
class _Object:
    name: str
    sha256: str
    size: int
    metadata: dict[str, str]


async def _digest(store: BlobStore, name: str) -> tuple[str, int, dict[str, str]]:
    sink = _Hasher()
    await store.download_to(name, sink)  # type: ignore[arg-type]
    return sink.sha.hexdigest(), sink.size, await store.metadata(name)


async def _copy_one(source: BlobStore, target: BlobStore, name: str, *, overwrite: bool,
                    spool_bytes: int) -> tuple[Outcome, int, str]:
    spool = _Spool(spool_bytes)
    try:
        meta = await source.metadata(name)
        await source.download_to(name, spool)  # type: ignore[arg-type]
        want = _Object(name, spool.sha.hexdigest(), spool.size, meta)
        outcome: Outcome = "copied"
        if not await target.create(name, spool.rewound(), metadata=meta or None):
            sha, size, have_meta = await _digest(target, name)
            if (sha, size, have_meta) == (want.sha256, want.size, want.metadata):
                return "skipped", 0, ""
            if not overwrite:
                return "mismatch", 0, f"target has sha256 {sha[:12]}…, {size} bytes, metadata {have_meta}"
            await target.put(name, spool.rewound(), metadata=meta or None)
            outcome = "replaced"
        sha, size, have_meta = await _digest(target, name)
        if (sha, size, have_meta) != (want.sha256, want.size, want.metadata):
            return "failed", 0, f"verification: sha256 {sha[:12]}… != {want.sha256[:12]}…, or metadata differs"
        return outcome, want.size, ""
    except NotFound:
        return "failed", 0, "vanished from the source during the copy"
    finally:
        spool.close()


async def copy_matter(source: BlobStore, target: BlobStore, matter_id: str, *, concurrency: int = 8,
                      overwrite: bool = False, spool_bytes: int = SPOOL_BYTES,
                      progress: Callable[[str, Outcome], Any] | None = None) -> CopyReport:
    """Copy every object under the matter's prefix. The target store's scope must cover that prefix."""
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    prefix = MatterPaths(matter_id).prefix
    names = await source.list_names(prefix)
    gate = asyncio.Semaphore(concurrency)
    outcomes: dict[str, tuple[Outcome, int, str]] = {}

    async def one(name: str) -> None:
        async with gate:
            try:
                outcomes[name] = await _copy_one(source, target, name, overwrite=overwrite, spool_bytes=spool_bytes)
            except Exception as e:  # one object's error is reported; the others go on
                log.warning("copying %s failed", name, exc_info=True)
                outcomes[name] = ("failed", 0, f"{type(e).__name__}: {e}"[:300])
            if progress:
                progress(name, outcomes[name][0])

    await asyncio.gather(*(one(n) for n in names))
    count = {k: sum(o[0] == k for o in outcomes.values()) for k in ("copied", "replaced", "skipped")}
    return CopyReport(
        matter_id=matter_id, objects=len(names), copied=count["copied"], replaced=count["replaced"],
        skipped=count["skipped"], bytes_copied=sum(o[1] for o in outcomes.values()),
        mismatched=sorted(n for n, o in outcomes.items() if o[0] == "mismatch"),
        failed=sorted(f"{n}: {o[2]}" for n, o in outcomes.items() if o[0] == "failed"),
    )


async def copy_matter_between(source: AzureBlobConfig | S3Config | dict[str, Any],
                              target: AzureBlobConfig | S3Config | dict[str, Any], matter_id: str, *,
                              create_target: bool = False, **options: Any) -> CopyReport:
    """Open both stores from their resources (the target's writes confined to the matter) and copy."""
    prefix = MatterPaths(matter_id).prefix
    async with open_store(source) as src, open_store(target, prefix, create_container=create_target) as dst:
        return await copy_matter(src, dst, matter_id, **options)
