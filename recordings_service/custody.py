"""The backends the configuration names: the root key's custody (``[keys] backend``), the
blob store (``[storage] blob_store``) and, beside it, the audit archive's tiles."""

from __future__ import annotations

from recordings_service.config import Config
from recordings_service.errors import ConfigError
from storage.blobstore.base import BlobStore
from storage.blobstore.filesystem import FilesystemBlobStore
from storage.blobstore.s3 import S3BlobStore
from storage.custody.base import RootKey
from storage.custody.file import FileRootKey
from storage.tilestore.base import TileStore
from storage.tilestore.filesystem import FilesystemTileStore
from storage.tilestore.s3 import S3TileStore


def open_root_key(config: Config) -> RootKey:
    if config.keys_backend == "file":
        return FileRootKey(config.root_key_path)
    try:
        from storage.custody.pkcs11 import Pkcs11RootKey
    except ImportError:
        raise ConfigError("the pkcs11 key backend needs python-pkcs11: "
                          "pip install 'recordings-service[hsm]'") from None
    return Pkcs11RootKey(config.pkcs11_module, config.pkcs11_token_label,
                         config.pkcs11_key_label, config.pkcs11_pin.reveal())


async def open_blob_store(config: Config) -> BlobStore:
    if config.blob_store == "s3":
        return await S3BlobStore.open(config.s3_bucket, config.s3_prefix,
                                      config.s3_endpoint_url, config.s3_region,
                                      config.s3_timeout_seconds, config.s3_object_lock)
    return FilesystemBlobStore(config.data_dir)


def open_tile_store(config: Config, blobs: BlobStore) -> TileStore:
    """The audit archive lives where the blobs do: in their bucket, or in the data
    directory."""
    if isinstance(blobs, S3BlobStore):
        return S3TileStore(blobs)
    return FilesystemTileStore(config.data_dir / "audit-tiles")
