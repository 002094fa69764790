"""The store on Azure Blob, through azure.storage.blob.aio: conditional writes on If-None-Match and ETags.

A connection string when one is configured (Azurite, tests); otherwise the account URL and a managed
identity, imported lazily and closed after use.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, BinaryIO

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob.aio import ContainerClient, ExponentialRetry

from f.core.storage import (
    BlobStore,
    Conflict,
    Data,
    NotFound,
    check_metadata,
    check_name,
)
from f.core.store_config import AzureBlobConfig


class AzureBlobStore(BlobStore):
    def __init__(self, container: ContainerClient, scope: str = "", *, workspace_storage: str | None = None) -> None:
        super().__init__(scope, workspace_storage=workspace_storage)
        self._container = container

    async def read(self, path: str) -> bytes:
        try:
            stream = await self._container.download_blob(check_name(path))
            return await stream.readall()
        except ResourceNotFoundError as e:
            raise NotFound(path) from e

    async def read_range(self, path: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("offset and length must be >= 0")
        if length == 0:
            await self.metadata(path)  # NotFound when missing, as for any other length
            return b""
        try:
            stream = await self._container.download_blob(check_name(path), offset=offset, length=length)
            return await stream.readall()
        except ResourceNotFoundError as e:
            raise NotFound(path) from e
        except HttpResponseError as e:
            if e.status_code == 416:  # the range starts at or past the end
                return b""
            raise

    async def read_with_etag(self, path: str) -> tuple[bytes, str]:
        try:
            stream = await self._container.download_blob(check_name(path))
            return await stream.readall(), stream.properties.etag
        except ResourceNotFoundError as e:
            raise NotFound(path) from e

    async def exists(self, path: str) -> bool:
        return await self._container.get_blob_client(check_name(path)).exists()

    async def metadata(self, path: str) -> dict[str, str]:
        try:
            return dict((await self._container.get_blob_client(check_name(path)).get_blob_properties()).metadata)
        except ResourceNotFoundError as e:
            raise NotFound(path) from e

    async def download_to(self, path: str, file: BinaryIO) -> int:
        try:
            stream = await self._container.download_blob(check_name(path))
        except ResourceNotFoundError as e:
            raise NotFound(path) from e
        return await stream.readinto(file)

    async def create(self, path: str, data: Data, metadata: dict[str, str] | None = None) -> bool:
        meta = check_metadata(metadata)
        try:
            await self._container.upload_blob(self._writable(path), data, if_none_match="*", metadata=meta)
            return True
        except ResourceExistsError:  # 409 BlobAlreadyExists
            return False

    async def replace(self, path: str, data: bytes | str, etag: str) -> str:
        try:
            blob = self._container.get_blob_client(self._writable(path))
            props = await blob.upload_blob(data, overwrite=True, etag=etag,
                                           match_condition=MatchConditions.IfNotModified)
            return props["etag"]
        except (ResourceModifiedError, ResourceNotFoundError) as e:  # 412, or 404 when it vanished
            raise Conflict(path) from e

    async def put(self, path: str, data: Data, metadata: dict[str, str] | None = None) -> None:
        await self._container.upload_blob(self._writable(path), data, overwrite=True, metadata=check_metadata(metadata))

    async def delete(self, path: str) -> bool:
        try:
            await self._container.delete_blob(self._writable(path))
            return True
        except ResourceNotFoundError:
            return False

    async def list_names(self, prefix: str) -> list[str]:
        check_name(prefix, prefix=True)
        return [name async for name in
                self._container.list_blob_names(name_starts_with=prefix or None, results_per_page=self.page_size)]

    async def list_dirs(self, prefix: str) -> list[str]:
        check_name(prefix, prefix=True)
        names = []
        async for item in self._container.walk_blobs(name_starts_with=prefix or None, delimiter="/",
                                                     results_per_page=self.page_size):
            if item.name.endswith("/"):
                names.append(item.name[len(prefix):-1])
        return names


def client_options(cfg: AzureBlobConfig) -> dict[str, Any]:
    """Bounded: each request has a connect and a read timeout, and at most `attempts` tries in all. The
    SDK's own backoff starts at 15 s (then 18, 24, 42); ours waits about backoff+2, +4, +8 s."""
    retry = ExponentialRetry(initial_backoff=cfg.retry_backoff_s,  # type: ignore[arg-type]  # a float works
                             increment_base=2, retry_total=cfg.attempts - 1, random_jitter_range=1)
    return {"retry_policy": retry, "connection_timeout": cfg.connect_timeout_s, "read_timeout": cfg.read_timeout_s}


@asynccontextmanager
async def open_azure_blob(cfg: AzureBlobConfig, scope: str = "", *,
                          create_container: bool = False) -> AsyncIterator[AzureBlobStore]:
    credential = None
    if cfg.connection_string:
        container = ContainerClient.from_connection_string(
            cfg.connection_string.get_secret_value(), cfg.container, **client_options(cfg))
    else:
        from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

        credential = (
            ManagedIdentityCredential(client_id=cfg.managed_identity_client_id)
            if cfg.managed_identity_client_id
            else DefaultAzureCredential()
        )
        assert cfg.account_url  # the config holds a connection string or an account URL
        container = ContainerClient(cfg.account_url, cfg.container, credential=credential, **client_options(cfg))
    try:
        async with container:
            if create_container:
                try:
                    await container.create_container()
                except ResourceExistsError:
                    pass
            yield AzureBlobStore(container, scope, workspace_storage=cfg.workspace_storage)
    finally:
        if credential is not None:
            await credential.close()
