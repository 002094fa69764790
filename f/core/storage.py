"""The store every stage reads and writes: one interface, Azure Blob or S3 behind it, chosen by the resource.

Both backends keep the same guarantees: a conditional create that reports False when the object is
already there, compare-and-swap on the ETag, prefix listing, range reads, metadata set at creation,
streaming downloads, and writes refused outside the scope's prefix. Locally and in tests the services
are Azurite and moto; in production, Azure Blob through a managed identity, or S3.
"""

import json
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, BinaryIO, TypeVar

from pydantic import BaseModel

from f.core.store_config import (
    AzureBlobConfig,
    S3Config,
    StoreConfig,
    load_store_config,
)

__all__ = [
    "AzureBlobConfig", "BlobStore", "Conflict", "InvalidPath", "NotFound", "OutsideScope", "S3Config", "Store",
    "StoreConfig", "load_store_config", "open_store",
]

M = TypeVar("M", bound=BaseModel)
Data = bytes | str | BinaryIO

MAX_NAME_BYTES = 1024  # S3 keys and Blob names alike
MAX_METADATA_BYTES = 2048  # S3's limit for user metadata; Blob allows 8 KB
_METADATA_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # valid on both: a C# identifier, and case-stable on S3
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


class NotFound(KeyError):
    pass


class Conflict(RuntimeError):
    """A conditional write lost: the object exists, or changed since it was read."""


class OutsideScope(PermissionError):
    pass


class InvalidPath(ValueError):
    """A name that one of the services would store differently, or refuse."""


def check_name(path: str, *, prefix: bool = False) -> str:
    """An object name both services keep verbatim: relative, '/'-separated, no empty, '.' or '..' segments,
    no control characters or backslashes, at most 1024 bytes. A prefix may be empty or end with '/'."""
    segments = path.split("/")
    if prefix and segments[-1] == "":
        segments = segments[:-1]
    bad = (
        (not path and not prefix)
        or len(path.encode()) > MAX_NAME_BYTES
        or _BAD_CHARS.search(path)
        or any(s in ("", ".", "..") for s in segments)
    )
    if bad:
        raise InvalidPath(f"invalid object name {path[:120]!r}")
    return path


def check_metadata(metadata: dict[str, str] | None) -> dict[str, str] | None:
    """Metadata both services return unchanged: lower-case identifier keys, printable ASCII values."""
    if not metadata:
        return None
    size = 0
    for key, value in metadata.items():
        if not _METADATA_KEY.fullmatch(key):
            raise ValueError(f"metadata key {key!r}: use lower-case letters, digits and _, starting with a letter")
        if not isinstance(value, str) or not all(" " <= c <= "~" for c in value):
            raise ValueError(f"metadata {key!r}: the value must be printable ASCII (quote it first)")
        size += len(key) + len(value)
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is {size} bytes; at most {MAX_METADATA_BYTES}")
    return dict(metadata)


class BlobStore(ABC):
    """A container (Blob) or bucket (S3) seen through one matter's scope: reads anywhere, writes under scope."""

    def __init__(self, scope: str = "", *, workspace_storage: str | None = None) -> None:
        if scope:
            check_name(scope, prefix=True)
        self.scope = scope
        self.workspace_storage = workspace_storage
        self.page_size = 1000  # names per listing request; both services cap it at 1000

    def _writable(self, path: str) -> str:
        if not path.startswith(self.scope) or path.startswith("/") or any(s in (".", "..") for s in path.split("/")):
            raise OutsideScope(f"refusing to write {path!r} outside {self.scope!r}")
        return check_name(path)

    # What each backend implements.
    @abstractmethod
    async def read(self, path: str) -> bytes: ...

    @abstractmethod
    async def read_range(self, path: str, offset: int, length: int) -> bytes:
        """Bytes [offset, offset+length), cut at the end of the object: b"" past it. NotFound when missing."""

    @abstractmethod
    async def read_with_etag(self, path: str) -> tuple[bytes, str]: ...

    @abstractmethod
    async def exists(self, path: str) -> bool: ...

    @abstractmethod
    async def metadata(self, path: str) -> dict[str, str]: ...

    @abstractmethod
    async def download_to(self, path: str, file: BinaryIO) -> int:
        """Stream an object into a file without holding it in memory; returns the byte count."""

    @abstractmethod
    async def create(self, path: str, data: Data, metadata: dict[str, str] | None = None) -> bool:
        """Write only if absent. False when it already exists: someone finished that work."""

    @abstractmethod
    async def replace(self, path: str, data: bytes | str, etag: str) -> str:
        """Compare-and-swap on the ETag; returns the new ETag. Conflict when the object changed or vanished."""

    @abstractmethod
    async def put(self, path: str, data: Data, metadata: dict[str, str] | None = None) -> None:
        """Unconditional write, for records whose newest version simply wins (failure notes, rollups)."""

    @abstractmethod
    async def delete(self, path: str) -> bool:
        """False when there was nothing to delete."""

    @abstractmethod
    async def list_names(self, prefix: str) -> list[str]:
        """Every name under prefix, in byte order."""

    @abstractmethod
    async def list_dirs(self, prefix: str) -> list[str]:
        """Immediate 'sub-folders' under prefix, without the trailing slash."""

    # Shared by both.
    async def read_json(self, path: str) -> Any:
        return json.loads(await self.read(path))

    async def read_model(self, path: str, model: type[M]) -> M:
        return model.model_validate_json(await self.read(path))

    async def create_model(self, path: str, record: BaseModel) -> bool:
        return await self.create(path, record.model_dump_json())

    async def put_model(self, path: str, record: BaseModel) -> None:
        await self.put(path, record.model_dump_json())


Store = BlobStore


@asynccontextmanager
async def open_store(
    config: AzureBlobConfig | S3Config | dict[str, Any], scope: str = "", *, create_container: bool = False
) -> AsyncIterator[BlobStore]:
    """A store whose writes are confined to `scope` (a matter's prefix); the resource's `kind` picks the backend."""
    cfg = load_store_config(config)
    opener: AbstractAsyncContextManager[BlobStore]
    if isinstance(cfg, S3Config):
        from f.core.s3 import open_s3

        opener = open_s3(cfg, scope, create_bucket=create_container)
    else:
        from f.core.azure_blob import open_azure_blob

        opener = open_azure_blob(cfg, scope, create_container=create_container)
    async with opener as store:
        yield store
