"""The store on S3 (or an S3-compatible service), through aiobotocore: conditional writes on If-None-Match
and If-Match, the same guarantees as the Blob store.

Keys from the resource when it has them, otherwise botocore's default credential chain (environment,
shared files, web identity, container or instance role).
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, BinaryIO

from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import ClientError

from f.core.storage import (
    BlobStore,
    Conflict,
    Data,
    NotFound,
    check_metadata,
    check_name,
)
from f.core.store_config import S3Config

_CHUNK = 1024 * 1024
# S3 answers 409 ConditionalRequestConflict while another conditional write to the same key is in
# flight; the write is then tried again, a bounded number of times, and gets its real answer.
_CONFLICT_RETRIES = 5


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code") or "")


def _missing(error: ClientError) -> bool:
    return _status(error) == 404 or _code(error) in ("NoSuchKey", "NotFound", "404")


def _body(data: Data) -> bytes | BinaryIO:
    return data.encode() if isinstance(data, str) else data


class S3Store(BlobStore):
    def __init__(self, client: Any, bucket: str, scope: str = "", *, workspace_storage: str | None = None) -> None:
        super().__init__(scope, workspace_storage=workspace_storage)
        self._s3 = client
        self.bucket = bucket

    async def _get(self, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return await self._s3.get_object(Bucket=self.bucket, Key=check_name(path), **kwargs)
        except ClientError as e:
            if _missing(e):
                raise NotFound(path) from e
            raise

    async def _head(self, path: str) -> dict[str, Any]:
        try:
            return await self._s3.head_object(Bucket=self.bucket, Key=check_name(path))
        except ClientError as e:
            if _missing(e):
                raise NotFound(path) from e
            raise

    async def read(self, path: str) -> bytes:
        response = await self._get(path)
        async with response["Body"] as body:
            return await body.read()

    async def read_range(self, path: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("offset and length must be >= 0")
        if length == 0:
            await self._head(path)
            return b""
        try:
            response = await self._get(path, Range=f"bytes={offset}-{offset + length - 1}")
        except ClientError as e:
            if _status(e) == 416 or _code(e) == "InvalidRange":  # the range starts at or past the end
                return b""
            raise
        async with response["Body"] as body:
            return await body.read()

    async def read_with_etag(self, path: str) -> tuple[bytes, str]:
        response = await self._get(path)
        async with response["Body"] as body:
            return await body.read(), response["ETag"]

    async def exists(self, path: str) -> bool:
        try:
            await self._head(path)
            return True
        except NotFound:
            return False

    async def metadata(self, path: str) -> dict[str, str]:
        return dict((await self._head(path)).get("Metadata") or {})

    async def download_to(self, path: str, file: BinaryIO) -> int:
        response = await self._get(path)
        count = 0
        async with response["Body"] as body:
            async for chunk in body.iter_chunks(_CHUNK):
                file.write(chunk)
                count += len(chunk)
        return count

    async def _put(self, path: str, data: Data, metadata: dict[str, str] | None, **conditions: str) -> dict[str, Any]:
        body = _body(data)
        start = body.tell() if hasattr(body, "tell") else None
        for attempt in range(_CONFLICT_RETRIES + 1):
            try:
                return await self._s3.put_object(Bucket=self.bucket, Key=path, Body=body,
                                                 Metadata=check_metadata(metadata) or {}, **conditions)
            except ClientError as e:
                if _status(e) != 409 or attempt == _CONFLICT_RETRIES:
                    raise
                if start is not None:
                    body.seek(start)  # type: ignore[union-attr]
                await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    async def create(self, path: str, data: Data, metadata: dict[str, str] | None = None) -> bool:
        try:
            await self._put(self._writable(path), data, metadata, IfNoneMatch="*")
            return True
        except ClientError as e:
            if _status(e) == 412:  # PreconditionFailed: the key exists
                return False
            raise

    async def replace(self, path: str, data: bytes | str, etag: str) -> str:
        try:
            return (await self._put(self._writable(path), data, None, IfMatch=etag))["ETag"]
        except ClientError as e:
            if _status(e) in (409, 412) or _missing(e):  # changed, still contended, or vanished
                raise Conflict(path) from e
            raise

    async def put(self, path: str, data: Data, metadata: dict[str, str] | None = None) -> None:
        await self._put(self._writable(path), data, metadata)

    async def delete(self, path: str) -> bool:
        # S3 answers 204 whether or not the key existed: the answer comes from a HEAD just before.
        key = self._writable(path)
        existed = await self.exists(key)
        if existed:
            await self._s3.delete_object(Bucket=self.bucket, Key=key)
        return existed

    async def _pages(self, prefix: str, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        check_name(prefix, prefix=True)
        paginator = self._s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix,
                                             PaginationConfig={"PageSize": self.page_size}, **kwargs):
            yield page

    async def list_names(self, prefix: str) -> list[str]:
        return [item["Key"] async for page in self._pages(prefix) for item in page.get("Contents", [])]

    async def list_dirs(self, prefix: str) -> list[str]:
        return [p["Prefix"][len(prefix):-1]
                async for page in self._pages(prefix, Delimiter="/") for p in page.get("CommonPrefixes", [])]


def client_config(cfg: S3Config) -> Config:
    """Bounded: each request has a connect and a read timeout, and at most `attempts` tries in all."""
    return Config(
        connect_timeout=cfg.connect_timeout_s,
        read_timeout=cfg.read_timeout_s,
        retries={"total_max_attempts": cfg.attempts, "mode": "standard"},
        s3={"addressing_style": "path" if cfg.path_style else "auto"},
        max_pool_connections=32,
    )


@asynccontextmanager
async def open_s3(cfg: S3Config, scope: str = "", *, create_bucket: bool = False) -> AsyncIterator[S3Store]:
    keys: dict[str, str] = {}
    if cfg.access_key_id and cfg.secret_access_key:
        keys = {"aws_access_key_id": cfg.access_key_id.get_secret_value(),
                "aws_secret_access_key": cfg.secret_access_key.get_secret_value()}
        if cfg.session_token:
            keys["aws_session_token"] = cfg.session_token.get_secret_value()
    async with get_session().create_client("s3", region_name=cfg.region, endpoint_url=cfg.endpoint_url,
                                           config=client_config(cfg), **keys) as client:
        if create_bucket:
            location = {} if cfg.region == "us-east-1" else {
                "CreateBucketConfiguration": {"LocationConstraint": cfg.region}}
            try:
                await client.create_bucket(Bucket=cfg.bucket, **location)
            except ClientError as e:
                if _code(e) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
        yield S3Store(client, cfg.bucket, scope, workspace_storage=cfg.workspace_storage)
