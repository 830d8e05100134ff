"""Blobs as objects in an S3-compatible bucket (AWS S3, SeaweedFS, MinIO, Ceph RGW…).

Client: aiobotocore (the asyncio botocore). obstore served 64 KiB ranges faster in the
recipe's probe, but exposes neither ListMultipartUploads nor AbortMultipartUpload, which
the sweep of abandoned uploads needs (docs/architecture.md).

- A write buffers one part (8 MiB) at a time: a blob under one part is one PutObject,
  a larger one a multipart upload whose parts stream out as they fill. Nothing is
  visible under the name before PutObject / CompleteMultipartUpload, which the caller
  reaches only after its checksum and container checks; ``abort`` aborts the upload.
- A read opens with one ranged GET of the blob's first 64 KiB (the size comes from its
  Content-Range), and a stream's range is one ranged GET read as the client takes it. A
  reader opened with the size it will find (a blob this process has verified before:
  encrypted_blob.VerifiedHeaders) makes no request until its first read.
- Incomplete multipart uploads are aborted (at start and by the hourly sweep) only when
  older than a day: a live upload on another replica is never touched.
- With ``object_lock`` ("governance" or "compliance", on a bucket made with Object Lock
  enabled), each blob is written under a retention date (its recording's purge date, only
  ever extended later) and may carry a legal hold. The bucket is versioned: a delete
  removes every version of the key, and a version the lock still keeps makes it raise
  BlobLockedError with the date it lapses.
- Every call has a deadline (``[storage.s3] timeout_seconds``, retries included): a store
  that stops answering (a frozen process, a black-holed network) costs a request that
  long, never minutes. Every error of the store or the network, and a deadline passed,
  becomes StorageUnavailableError (503 with Retry-After), a missing object
  BlobNotFoundError. A write whose store stalls is aborted; an object the store may still
  complete later is an orphan no catalog row names, unreadable (its key was never
  stored) and deleted by the orphan sweep.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiobotocore.session import get_session
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from storage.blobstore.base import BlobReader, BlobStore, BlobWriter
from storage.errors import (
    BlobLockedError,
    BlobNotFoundError,
    StorageError,
    StorageUnavailableError,
)

PART_SIZE = 8 * 1024 * 1024
HEAD_BYTES = 64 * 1024
INCOMPLETE_AFTER = timedelta(days=1)
DEFAULT_TIMEOUT_SECONDS = 10.0
_MISSING = {"NoSuchKey", "404", "NotFound"}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "unknown"))
        if code in _MISSING:
            raise BlobNotFoundError("blob not found") from None
        raise StorageUnavailableError(f"the object store refused the request: {code}"
                                      ) from None
    except (BotoCoreError, aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise StorageUnavailableError(f"the object store cannot be reached: "
                                      f"{type(exc).__name__}") from None


@asynccontextmanager
async def bounded_call(seconds: float) -> AsyncIterator[None]:
    """One call to the store: translated errors, and a deadline."""
    with _translated():
        async with asyncio.timeout(seconds):
            yield


class _S3Writer(BlobWriter):
    def __init__(self, store: S3BlobStore, key: str, retain_until: datetime | None) -> None:
        self._s3, self._bucket, self._key = store.client, store.bucket, key
        # Object Lock from the first byte: the retention is set by the write itself.
        self._lock: dict[str, Any] = {} if not store.object_lock or retain_until is None \
            else {"ObjectLockMode": store.object_lock, "ObjectLockRetainUntilDate": retain_until}
        self._timeout = store.timeout
        # Writes of this process still in memory only (not yet a multipart upload).
        self._local = store.buffering
        self._local.add(self)
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    async def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= PART_SIZE:
            part = bytes(self._buffer[:PART_SIZE])
            del self._buffer[:PART_SIZE]
            await self._send_part(part)

    async def _send_part(self, part: bytes) -> None:
        async with bounded_call(self._timeout):
            if self._upload_id is None:
                created = await self._s3.create_multipart_upload(Bucket=self._bucket,
                                                                 Key=self._key, **self._lock)
                self._upload_id = str(created["UploadId"])
                self._local.discard(self)
            number = len(self._parts) + 1
            sent = await self._s3.upload_part(Bucket=self._bucket, Key=self._key,
                                              UploadId=self._upload_id, PartNumber=number,
                                              Body=part)
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    async def commit(self) -> None:
        if self._upload_id is None:
            async with bounded_call(self._timeout):
                await self._s3.put_object(Bucket=self._bucket, Key=self._key,
                                          Body=bytes(self._buffer), **self._lock)
            self._buffer = bytearray()
            self._local.discard(self)
            return
        if self._buffer:
            await self._send_part(bytes(self._buffer))
            self._buffer = bytearray()
        async with bounded_call(self._timeout):
            await self._s3.complete_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts})
        self._upload_id = None

    async def abort(self) -> None:
        self._buffer = bytearray()
        self._local.discard(self)
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is not None:
            try:
                async with bounded_call(self._timeout):
                    await self._s3.abort_multipart_upload(Bucket=self._bucket, Key=self._key,
                                                          UploadId=upload_id)
            except StorageUnavailableError:
                pass  # the hourly sweep aborts it once older than the grace


class _S3Reader(BlobReader):
    def __init__(self, store: S3BlobStore, key: str, size: int, head: bytes) -> None:
        self._store, self._key = store, key
        self.size = size
        self._head = head
        self._body: Any = None
        self._position = self._end = 0

    async def expect(self, offset: int, length: int) -> None:
        await self._drop_stream()
        if offset + length <= len(self._head) or length <= 0:
            return
        self._body = await self._store.get_range(self._key, offset, length)
        self._position, self._end = offset, offset + length

    async def read(self, offset: int, length: int) -> bytes | bytearray:
        length = max(0, min(length, self.size - offset))
        if offset + length <= len(self._head):
            return self._head[offset : offset + length]
        if self._body is None or offset != self._position or offset + length > self._end:
            await self.expect(offset, length)
        data = bytearray()
        async with bounded_call(self._store.timeout):
            while len(data) < length:
                chunk = await self._body.read(length - len(data))
                if not chunk:
                    break
                data += chunk
        self._position += len(data)
        return data

    async def _drop_stream(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            body.close()

    async def close(self) -> None:
        await self._drop_stream()


class S3BlobStore(BlobStore):
    def __init__(self, client: Any, bucket: str, prefix: str, exit_stack: AsyncExitStack,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS, object_lock: str = "") -> None:
        self.client, self.bucket = client, bucket
        # "GOVERNANCE" or "COMPLIANCE" (S3's names), or "" for a bucket without the lock.
        self.object_lock = object_lock.upper()
        self.locks = bool(object_lock)
        self.timeout = timeout
        # The configured prefix; blobs are under <prefix>blobs/, the audit archive's
        # tiles under <prefix>audit-tiles/ (storage/tilestore/s3.py).
        self.prefix = prefix
        self._prefix = f"{prefix}blobs/"
        self._exit_stack = exit_stack
        self.incomplete_after = INCOMPLETE_AFTER
        self.buffering: set[_S3Writer] = set()

    @classmethod
    async def open(cls, bucket: str, prefix: str = "", endpoint_url: str = "",
                   region: str = "us-east-1", call_seconds: float = DEFAULT_TIMEOUT_SECONDS,
                   object_lock: str = "") -> S3BlobStore:
        """Credentials come from the AWS variables (AWS_ACCESS_KEY_ID, …), never config.
        ``call_seconds``: how long any one call may take, its retries included."""
        stack = AsyncExitStack()
        client = await stack.enter_async_context(get_session().create_client(
            "s3", endpoint_url=endpoint_url or None, region_name=region,
            config=BotoConfig(
                # Path-style for S3-compatible stores on a plain host:port.
                s3={"addressing_style": "path" if endpoint_url else "auto"},
                max_pool_connections=128, connect_timeout=min(5.0, call_seconds),
                read_timeout=call_seconds, retries={"max_attempts": 3, "mode": "standard"},
                # botocore computes CRC checksums of bodies in pure Python by default, at
                # a fifth of the throughput; every blob is authenticated end to end by
                # AES-GCM (and the upload by its SHA-256) already.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required")))
        store = cls(client, bucket, prefix, stack, call_seconds, object_lock)
        if object_lock:
            try:
                await store._check_lock_enabled()
            except BaseException:
                await stack.aclose()
                raise
        return store

    async def _check_lock_enabled(self) -> None:
        try:
            async with bounded_call(self.timeout):
                answer = await self.client.get_object_lock_configuration(Bucket=self.bucket)
            enabled = answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
        except StorageUnavailableError as exc:
            if "ObjectLockConfigurationNotFound" not in str(exc):
                raise
            enabled = None
        if enabled != "Enabled":
            raise StorageError(f"[storage.s3] object_lock is set, but bucket {self.bucket!r} "
                               f"was not created with Object Lock enabled")

    def _key(self, name: str) -> str:
        if len(name) < 3 or not name.isalnum():
            raise BlobNotFoundError("invalid blob name")
        return self._prefix + name

    async def get_range(self, key: str, offset: int, length: int) -> Any:
        async with bounded_call(self.timeout):
            answer = await self.client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={offset}-{offset + length - 1}")
        return answer["Body"]

    async def open_writer(self, name: str, retain_until: datetime | None = None,
                          ) -> BlobWriter:
        return _S3Writer(self, self._key(name), retain_until)

    async def open_reader(self, name: str, size: int | None = None) -> BlobReader:
        key = self._key(name)
        if size is not None:
            # Known already (a blob is immutable): the first read is the first request.
            return _S3Reader(self, key, size, b"")
        async with bounded_call(self.timeout):
            answer = await self.client.get_object(Bucket=self.bucket, Key=key,
                                                  Range=f"bytes=0-{HEAD_BYTES - 1}")
            body = answer["Body"]
            try:
                head = await body.read()
            finally:
                body.close()
        match = _CONTENT_RANGE.fullmatch(str(answer.get("ContentRange", "")))
        size = int(match.group(3)) if match else len(head)
        return _S3Reader(self, key, size, bytes(head))

    async def size(self, name: str) -> int:
        async with bounded_call(self.timeout):
            answer = await self.client.head_object(Bucket=self.bucket, Key=self._key(name))
        return int(answer["ContentLength"])

    async def delete(self, name: str) -> None:
        key = self._key(name)
        if not self.locks:
            async with bounded_call(self.timeout):
                await self.client.delete_object(Bucket=self.bucket, Key=key)
            return
        # A versioned bucket: a plain delete would only hide the audio behind a marker.
        async with bounded_call(self.timeout):
            answer = await self.client.list_object_versions(Bucket=self.bucket, Prefix=key)
        versions = [v["VersionId"] for kind in ("Versions", "DeleteMarkers")
                    for v in answer.get(kind, []) if v["Key"] == key]
        for version in versions:
            try:
                async with bounded_call(self.timeout):
                    await self.client.delete_object(Bucket=self.bucket, Key=key,
                                                    VersionId=version)
            except StorageUnavailableError as exc:
                if "AccessDenied" not in str(exc):
                    raise
                raise BlobLockedError("the object store's lock keeps the blob",
                                      await self._locked_until(key, version)) from None

    async def _locked_until(self, key: str, version: str) -> datetime | None:
        """When the lock on a version lapses: None while a legal hold stands."""
        async with bounded_call(self.timeout):
            head = await self.client.head_object(Bucket=self.bucket, Key=key,
                                                 VersionId=version)
        if head.get("ObjectLockLegalHoldStatus") == "ON":
            return None
        until = head.get("ObjectLockRetainUntilDate")
        return until.astimezone(UTC) if isinstance(until, datetime) else None

    async def retain(self, name: str, until: datetime) -> None:
        if not self.locks:
            return
        key = self._key(name)
        async with bounded_call(self.timeout):
            head = await self.client.head_object(Bucket=self.bucket, Key=key)
        current = head.get("ObjectLockRetainUntilDate")
        if isinstance(current, datetime) and current >= until:
            return  # never shortened (COMPLIANCE would refuse; GOVERNANCE must not)
        async with bounded_call(self.timeout):
            await self.client.put_object_retention(
                Bucket=self.bucket, Key=key, VersionId=head["VersionId"],
                Retention={"Mode": self.object_lock, "RetainUntilDate": until})

    async def legal_hold(self, name: str, held: bool) -> None:
        if not self.locks:
            return
        async with bounded_call(self.timeout):
            await self.client.put_object_legal_hold(
                Bucket=self.bucket, Key=self._key(name),
                LegalHold={"Status": "ON" if held else "OFF"})

    async def delete_many(self, names: list[str]) -> None:
        if self.locks:
            for name in names:
                await self.delete(name)
            return
        keys = [self._key(n) for n in names]
        for i in range(0, len(keys), 1000):
            async with bounded_call(self.timeout):
                answer = await self.client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True})
            if answer.get("Errors"):
                raise StorageUnavailableError("the object store did not delete every blob")

    async def _pages(self, operation: str) -> AsyncIterator[dict[str, Any]]:
        """A listing's pages under the prefix, each fetched within the deadline (a long
        listing may take long in all, but no one page may stall)."""
        pages = self.client.get_paginator(operation).paginate(
            Bucket=self.bucket, Prefix=self._prefix).__aiter__()
        while True:
            async with bounded_call(self.timeout):
                try:
                    page = await pages.__anext__()
                except StopAsyncIteration:
                    return
            yield page

    async def names(self) -> AsyncIterator[tuple[str, datetime]]:
        async for page in self._pages("list_objects_v2"):
            for item in page.get("Contents", []):
                yield str(item["Key"])[len(self._prefix):], item["LastModified"]

    async def _uploads(self) -> list[dict[str, Any]]:
        return [upload async for page in self._pages("list_multipart_uploads")
                for upload in page.get("Uploads", [])]

    async def discard_incomplete(self) -> int:
        cutoff = datetime.now(UTC) - self.incomplete_after
        aborted = 0
        for upload in await self._uploads():
            if upload["Initiated"] < cutoff:
                async with bounded_call(self.timeout):
                    await self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                aborted += 1
        return aborted

    async def incomplete_writes(self) -> int:
        return len(self.buffering) + len(await self._uploads())

    async def writers_elsewhere(self) -> bool:
        return True  # replicas share the bucket: an orphan may be an upload committing

    async def ping(self) -> None:
        async with bounded_call(self.timeout):
            await self.client.head_bucket(Bucket=self.bucket)

    async def close(self) -> None:
        await self._exit_stack.aclose()


