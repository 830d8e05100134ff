"""Tiles as objects in the recordings' bucket, under ``<prefix>audit-tiles/``, beside the
blobs' ``<prefix>blobs/`` (which the orphan sweep lists: a tile is never taken for an
orphan blob)."""

from __future__ import annotations

from storage.blobstore.s3 import S3BlobStore, bounded_call
from storage.errors import BlobNotFoundError
from storage.tilestore.base import TileStore, check_path

TILES_PREFIX = "audit-tiles/"


class S3TileStore(TileStore):
    def __init__(self, blobs: S3BlobStore) -> None:
        self._blobs = blobs
        self._prefix = blobs.prefix + TILES_PREFIX

    async def put(self, path: str, data: bytes) -> None:
        async with bounded_call(self._blobs.timeout):
            await self._blobs.client.put_object(Bucket=self._blobs.bucket,
                                                Key=self._prefix + check_path(path), Body=data)

    async def get(self, path: str) -> bytes | None:
        try:
            async with bounded_call(self._blobs.timeout):
                answer = await self._blobs.client.get_object(
                    Bucket=self._blobs.bucket, Key=self._prefix + check_path(path))
                body = answer["Body"]
                try:
                    return bytes(await body.read())
                finally:
                    body.close()
        except BlobNotFoundError:
            return None
