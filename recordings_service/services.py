"""Everything a request, a job or a CLI command needs, opened and closed in one place."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recordings_service.clock import Clock
from recordings_service.config import Config
from recordings_service.custody import open_blob_store, open_root_key, open_tile_store
from recordings_service.metrics import Metrics
from storage.audit_batch import GroupCommitAppender
from storage.blobstore.base import BlobStore
from storage.custody.base import RootKey
from storage.database import Database, sqlite_url
from storage.encrypted_blob import VerifiedHeaders
from storage.group_commit import GroupCommit
from storage.key_material import open_key_material
from storage.keyring import Keyring
from storage.migrate import upgrade
from storage.tilestore.base import TileStore

log = logging.getLogger(__name__)


@dataclass
class Services:
    config: Config
    clock: Clock
    database: Database
    blobs: BlobStore
    # The audit archive (entries moved out of the catalog), beside the blobs.
    tiles: TileStore
    keyring: Keyring
    signing_key: Ed25519PrivateKey
    link_secret: bytes
    subject_secret: bytes
    metrics: Metrics
    audit: GroupCommitAppender
    # Small write transactions that may share one commit (an upload's row).
    group_commit: GroupCommit
    # Blobs this process has opened and checked: a second access skips the checks' reads.
    verified_headers: VerifiedHeaders = field(default_factory=VerifiedHeaders)

    def subject_ref(self, customer_id: str) -> str:
        """A keyed pseudonym of a customer id: finds a subject's tombstones after purge."""
        return hmac.new(self.subject_secret, customer_id.encode(), hashlib.sha256).hexdigest()


@asynccontextmanager
async def open_services(config: Config, clock: Clock) -> AsyncIterator[Services]:
    data_dir = config.data_dir
    created_dir = not data_dir.exists()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if created_dir:
        log.info("created data directory", extra={"data_dir": str(data_dir.resolve())})
    url = config.database_url.reveal() or sqlite_url(data_dir)
    database = Database(url, config.database_pool_size)
    appender = GroupCommitAppender(database)
    group_commit = GroupCommit(database)
    blobs: BlobStore | None = None
    root: RootKey | None = None
    try:
        await upgrade(database)
        root = open_root_key(config)
        keys, created = await open_key_material(database, root, data_dir, clock())
        if created:
            log.info("created key material for a new installation",
                     extra={"root_key": root.describe()})
        blobs = await open_blob_store(config)
        yield Services(
            config=config,
            clock=clock,
            database=database,
            blobs=blobs,
            tiles=open_tile_store(config, blobs),
            keyring=keys.keyring,
            signing_key=keys.signing_key,
            link_secret=keys.link_secret,
            subject_secret=keys.subject_secret,
            metrics=Metrics(),
            audit=appender,
            group_commit=group_commit,
        )
    finally:
        if blobs is not None:
            await blobs.close()
        if root is not None:
            root.close()
        await group_commit.close()
        await appender.close()
        await database.dispose()
