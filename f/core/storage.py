"""The store every stage reads and writes: Azure Blob through azure.storage.blob.aio, writes conditional.

Locally and in tests it is Azurite behind a connection string; in Azure it is the account URL plus a
managed identity. Writes outside the scope's prefix are refused.
"""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, BinaryIO, Literal, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

M = TypeVar("M", bound=BaseModel)


class StoreConfig(BaseModel):
    """The `matter_store` resource."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["azure_blob"] = "azure_blob"
    container: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    connection_string: SecretStr | None = None
    account_url: str | None = None
    managed_identity_client_id: str | None = None

    @model_validator(mode="after")
    def _one_way_in(self) -> "StoreConfig":
        if not self.connection_string and not self.account_url:
            raise ValueError("store needs connection_string or account_url")
        return self


class NotFound(KeyError):
    pass


class Conflict(RuntimeError):
    """A conditional write lost: the blob exists, or changed since it was read."""


class OutsideScope(PermissionError):
    pass


class BlobStore:
    def __init__(self, container: ContainerClient, scope: str = "") -> None:
        self._container = container
        self.scope = scope

    def _writable(self, path: str) -> str:
        if not path.startswith(self.scope) or ".." in path.split("/") or path.startswith("/"):
            raise OutsideScope(f"refusing to write {path!r} outside {self.scope!r}")
        return path

    async def read(self, path: str) -> bytes:
        try:
            stream = await self._container.download_blob(path)
            return await stream.readall()
        except ResourceNotFoundError as e:
            raise NotFound(path) from e

    async def read_range(self, path: str, offset: int, length: int) -> bytes:
        try:
            stream = await self._container.download_blob(path, offset=offset, length=length)
            return await stream.readall()
        except ResourceNotFoundError as e:
            raise NotFound(path) from e

    async def read_json(self, path: str) -> Any:
        return json.loads(await self.read(path))

    async def read_model(self, path: str, model: type[M]) -> M:
        return model.model_validate_json(await self.read(path))

    async def read_with_etag(self, path: str) -> tuple[bytes, str]:
        try:
            stream = await self._container.download_blob(path)
            return await stream.readall(), stream.properties.etag
        except ResourceNotFoundError as e:
            raise NotFound(path) from e

    async def exists(self, path: str) -> bool:
        return await self._container.get_blob_client(path).exists()

    async def metadata(self, path: str) -> dict[str, str]:
        try:
            return dict((await self._container.get_blob_client(path).get_blob_properties()).metadata)
        except ResourceNotFoundError as e:
            raise NotFound(path) from e

    async def download_to(self, path: str, file: BinaryIO) -> int:
        """Stream a blob into a file without holding it in memory; returns the byte count."""
        try:
            stream = await self._container.download_blob(path)
        except ResourceNotFoundError as e:
            raise NotFound(path) from e
        return await stream.readinto(file)

    async def create(self, path: str, data: bytes | str | BinaryIO, metadata: dict[str, str] | None = None) -> bool:
        """Write only if absent. False when it already exists: someone finished that work."""
        try:
            await self._container.upload_blob(self._writable(path), data, if_none_match="*", metadata=metadata)
            return True
        except ResourceExistsError:
            return False

    async def replace(self, path: str, data: bytes | str, etag: str) -> str:
        """Compare-and-swap on the ETag; raises Conflict when the blob changed since it was read."""
        try:
            blob = self._container.get_blob_client(self._writable(path))
            props = await blob.upload_blob(data, overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified)
            return props["etag"]
        except (ResourceModifiedError, ResourceNotFoundError) as e:
            raise Conflict(path) from e

    async def put(self, path: str, data: bytes | str) -> None:
        """Unconditional write, for records whose newest version simply wins (failure notes, rollups)."""
        await self._container.upload_blob(self._writable(path), data, overwrite=True)

    async def delete(self, path: str) -> bool:
        """False when there was nothing to delete."""
        try:
            await self._container.delete_blob(self._writable(path))
            return True
        except ResourceNotFoundError:
            return False

    async def create_model(self, path: str, record: BaseModel) -> bool:
        return await self.create(path, record.model_dump_json())

    async def put_model(self, path: str, record: BaseModel) -> None:
        await self.put(path, record.model_dump_json())

    async def list_names(self, prefix: str) -> list[str]:
        return [name async for name in self._container.list_blob_names(name_starts_with=prefix)]

    async def list_dirs(self, prefix: str) -> list[str]:
        """Immediate 'sub-folders' under prefix, without the trailing slash."""
        names = []
        async for item in self._container.walk_blobs(name_starts_with=prefix, delimiter="/"):
            if item.name.endswith("/"):
                names.append(item.name[len(prefix):-1])
        return names


_CLIENT_OPTIONS: dict[str, Any] = {"retry_total": 4, "connection_timeout": 10, "read_timeout": 60}


@asynccontextmanager
async def open_store(
    config: StoreConfig | dict[str, Any], scope: str = "", *, create_container: bool = False
) -> AsyncIterator[BlobStore]:
    """A store whose writes are confined to `scope` (a matter's prefix)."""
    cfg = config if isinstance(config, StoreConfig) else StoreConfig.model_validate(config)
    credential = None
    if cfg.connection_string:
        container = ContainerClient.from_connection_string(
            cfg.connection_string.get_secret_value(), cfg.container, **_CLIENT_OPTIONS
        )
    else:
        from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

        credential = (
            ManagedIdentityCredential(client_id=cfg.managed_identity_client_id)
            if cfg.managed_identity_client_id
            else DefaultAzureCredential()
        )
        container = ContainerClient(cfg.account_url, cfg.container, credential=credential, **_CLIENT_OPTIONS)
    try:
        async with container:
            if create_container:
                try:
                    await container.create_container()
                except ResourceExistsError:
                    pass
            yield BlobStore(container, scope)
    finally:
        if credential is not None:
            await credential.close()
