"""One contract for every BlobStore and every root key custody (filesystem; file and
PKCS#11 through SoftHSM2), and for the catalog keyring over each custody.

A new backend (S3, Vault Transit, a KMS) is added to the fixtures' params and must pass
the same tests unchanged.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from recordings_service import jobs
from storage.blobstore.base import BlobStore, new_blob_name
from storage.blobstore.filesystem import FilesystemBlobStore
from storage.blobstore.memory import MemoryBlobStore
from storage.blobstore.s3 import S3BlobStore
from storage.custody.base import RootKey
from storage.custody.file import FileRootKey
from storage.database import Database, sqlite_url
from storage.errors import BlobNotFoundError, CustodyError, KeyringError
from storage.keyring import Keyring, new_dek
from storage.migrate import upgrade
from tests.conftest import Api
from tests.hsm import make_token

NOW = datetime(2026, 11, 24, tzinfo=UTC)


@pytest.fixture(params=["filesystem", "memory", "s3"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path,
                     ) -> Callable[[], Awaitable[BlobStore]]:
    """Opens the backend as one more process would: same blobs, its own store."""
    if request.param == "filesystem":
        async def filesystem() -> BlobStore:
            return FilesystemBlobStore(tmp_path / "blobs-root")
        return filesystem
    if request.param == "memory":
        shared = MemoryBlobStore()

        async def memory() -> BlobStore:
            return shared
        return memory
    seaweed = request.getfixturevalue("s3_env")
    prefix = seaweed.new_prefix()

    async def s3() -> BlobStore:
        return await S3BlobStore.open(seaweed.bucket, prefix, seaweed.endpoint)
    return s3


@pytest.fixture
async def store(open_store: Callable[[], Awaitable[BlobStore]]) -> AsyncIterator[BlobStore]:
    opened = await open_store()
    yield opened
    await opened.close()


@pytest.fixture(params=["file", "pkcs11"])
def open_root(request: pytest.FixtureRequest, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Callable[[], RootKey]:
    """Opens the custody as one more process would: the same key, its own handle."""
    if request.param == "file":
        return lambda: FileRootKey(tmp_path / "secrets" / "root.key")
    hsm = make_token(tmp_path / "hsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(hsm.conf))
    from storage.custody.pkcs11 import Pkcs11RootKey

    return lambda: Pkcs11RootKey(hsm.module, hsm.token_label, "root", hsm.pin)


@pytest.fixture
def root(open_root: Callable[[], RootKey]) -> Iterator[RootKey]:
    opened = open_root()
    yield opened
    opened.close()


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(sqlite_url(tmp_path))
    await upgrade(db)
    yield db
    await db.dispose()


@pytest.fixture
async def keyring(root: RootKey, database: Database) -> Keyring:
    root.add_generation(first=True)
    ring = Keyring(database, root)
    await ring.create_first(NOW)
    return ring


async def _names(store: BlobStore) -> set[str]:
    return {name async for name, _ in store.names()}


async def test_a_written_blob_is_invisible_until_committed(store: BlobStore) -> None:
    name = new_blob_name()
    writer = await store.open_writer(name)
    await writer.write(b"abc")
    await writer.write(b"def")
    assert name not in await _names(store)
    with pytest.raises(BlobNotFoundError):
        await store.size(name)
    await writer.commit()
    assert name in await _names(store)
    assert await store.size(name) == 6
    assert await store.read(name, 2, 3) == b"cde"
    assert await store.read(name, 4, 100) == b"ef"


async def test_an_aborted_blob_leaves_nothing(store: BlobStore) -> None:
    name = new_blob_name()
    writer = await store.open_writer(name)
    await writer.write(os.urandom(1000))
    await writer.abort()
    await writer.abort()  # twice is fine
    assert await _names(store) == set()
    assert await store.discard_incomplete() == 0


async def test_incomplete_writes_are_discarded_once_their_writer_is_gone(
        store: BlobStore, open_store: Callable[[], Awaitable[BlobStore]]) -> None:
    # As a restarted process (or another replica) sees a write never finished, big
    # enough that any backend has sent some of it on.
    writer = await store.open_writer(new_blob_name())
    for _ in range(9):
        await writer.write(os.urandom(1024 * 1024))
    successor = await open_store()
    assert await successor.incomplete_writes() == 1
    assert await successor.discard_incomplete() == 0  # its writer may still live
    if isinstance(store, FilesystemBlobStore):
        await store.close()  # the writer's process is gone, its write unfinished
    elif isinstance(store, S3BlobStore):
        # Replicas cannot see each other's processes: an upload counts as abandoned
        # only when it is older than any upload can last.
        successor.incomplete_after = timedelta(0)
    else:
        await writer.abort()  # in memory, a write dies with its process
    if not isinstance(store, MemoryBlobStore):
        assert await successor.discard_incomplete() == 1
    assert await successor.incomplete_writes() == 0
    assert await _names(successor) == set()
    await writer.abort()  # the crashed writer's own clean-up finds nothing left: no error
    if successor is not store:
        await successor.close()


async def test_delete_is_idempotent_and_reads_of_missing_blobs_fail(store: BlobStore) -> None:
    name = new_blob_name()
    writer = await store.open_writer(name)
    await writer.write(b"x")
    await writer.commit()
    await store.delete(name)
    await store.delete(name)
    with pytest.raises(BlobNotFoundError):
        await store.read(name, 0, 1)
    await store.ping()


async def test_names_are_random_and_reveal_nothing(store: BlobStore) -> None:
    names = {new_blob_name() for _ in range(1000)}
    assert len(names) == 1000 and all(len(n) == 32 for n in names)


def test_root_key_seals_bound_to_generation_and_associated_data(
        root: RootKey, open_root: Callable[[], RootKey]) -> None:
    assert not root.exists()
    first = root.add_generation(first=True)
    assert root.add_generation(first=True) == first  # a second starter makes no other
    assert root.exists() and root.generations() == [first]
    sealed = root.seal(first, b"k" * 32, b"kek:1")
    assert b"k" * 32 not in sealed
    other = open_root()  # another process
    try:
        assert other.unseal(first, sealed, b"kek:1") == b"k" * 32
    finally:
        other.close()
    with pytest.raises(CustodyError):
        root.unseal(first, sealed, b"kek:2")
    with pytest.raises(CustodyError):
        root.unseal(first, sealed[:-1] + bytes([sealed[-1] ^ 1]), b"kek:1")


def test_a_destroyed_root_generation_unseals_nothing(root: RootKey) -> None:
    first = root.add_generation(first=True)
    sealed = root.seal(first, b"secret", b"a")
    second = root.add_generation()
    assert root.generations() == [first, second] and root.current() == second
    root.destroy(first)
    assert root.generations() == [second]
    with pytest.raises(CustodyError):
        root.unseal(first, sealed, b"a")


async def test_keyring_round_trip_rotation_and_binding(keyring: Keyring) -> None:
    dek = new_dek()
    v1, wrapped = keyring.wrap(dek, "rec_1")
    assert keyring.unwrap(wrapped, v1, "rec_1") == dek
    with pytest.raises(KeyringError):
        keyring.unwrap(wrapped, v1, "rec_2")
    v2 = await keyring.rotate(NOW)
    assert v2 == keyring.current_version() != v1
    assert keyring.wrap(dek, "rec_1")[0] == v2
    assert keyring.unwrap(wrapped, v1, "rec_1") == dek  # old versions still unwrap
    await keyring.retire(v1, NOW)
    with pytest.raises(KeyringError):
        keyring.unwrap(wrapped, v1, "rec_1")
    assert [v.retired for v in keyring.versions()] == [True, False]


async def test_a_rotation_through_one_keyring_reaches_another(
        keyring: Keyring, database: Database, open_root: Callable[[], RootKey]) -> None:
    root = open_root()
    try:
        replica = Keyring(database, root)
        await replica.refresh()
        assert replica.current_version() == 1
        v2 = await keyring.rotate(NOW)
        version, wrapped = keyring.wrap(new_dek(), "rec_a")
        assert version == v2
        # The replica has not refreshed, but a read of an unknown version does.
        assert len(await replica.unwrap_fresh(wrapped, v2, "rec_a")) == 32
        assert replica.current_version() == v2
    finally:
        root.close()


async def test_delete_many_deletes_them_all(store: BlobStore) -> None:
    names = [new_blob_name() for _ in range(20)]
    for name in names:
        writer = await store.open_writer(name)
        await writer.write(name.encode())
        await writer.commit()
    await store.delete_many([*names[:15], "0" * 32])  # one that never existed
    assert await _names(store) == set(names[15:])


async def test_a_writer_waits_for_another_process_without_blocking_the_loop(
        tmp_path: Path) -> None:
    import asyncio
    import sqlite3

    from sqlalchemy import text

    from storage.database import Database, sqlite_url

    database = Database(sqlite_url(tmp_path))
    async with database.write() as conn:
        await conn.execute(text("CREATE TABLE t (x INTEGER)"))
    other = sqlite3.connect(tmp_path / "catalog.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def write() -> None:
        async with database.write() as conn:
            await conn.execute(text("INSERT INTO t VALUES (1)"))

    tick_task = asyncio.create_task(ticker())
    writer = asyncio.create_task(write())
    await asyncio.sleep(0.3)
    assert not writer.done()  # still waiting for the lock...
    assert ticks >= 10  # ...while the loop kept running
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(writer, 5)
    tick_task.cancel()
    async with database.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1
    await database.dispose()


async def test_an_open_reader_gives_the_size_and_random_reads(store: BlobStore) -> None:
    name = new_blob_name()
    writer = await store.open_writer(name)
    await writer.write(bytes(range(256)) * 4)
    await writer.commit()
    reader = await store.open_reader(name)
    assert reader.size == 1024
    assert await reader.read(1020, 10) == bytes([252, 253, 254, 255])
    assert await reader.read(0, 4) == bytes([0, 1, 2, 3])
    assert await reader.read(2000, 5) == b""
    await reader.close()
    await reader.close()  # twice is fine
    with pytest.raises(BlobNotFoundError):
        await store.open_reader(new_blob_name())


async def test_a_write_cancelled_during_its_commit_still_commits_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import threading
    import time

    from sqlalchemy import Connection, text

    from storage.database import Database, sqlite_url

    database = Database(sqlite_url(tmp_path))
    async with database.write() as conn:
        await conn.execute(text("CREATE TABLE t (x INTEGER)"))
    real_commit = Connection.commit
    committing = threading.Event()

    def slow_commit(self: Connection) -> None:
        committing.set()
        time.sleep(0.2)  # the fsync, in the worker thread
        real_commit(self)

    async def write() -> None:
        async with database.write() as conn:
            await conn.execute(text("INSERT INTO t VALUES (1), (2)"))

    monkeypatch.setattr(Connection, "commit", slow_commit)
    writer = asyncio.create_task(write())
    assert await asyncio.to_thread(committing.wait, 5)
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    monkeypatch.setattr(Connection, "commit", real_commit)
    await write()  # the connection went back to the pool only after its commit
    async with database.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 4
    await database.dispose()


async def test_sqlite_reads_and_writes_on_held_connections_stay_isolated_and_recover(
        tmp_path: Path) -> None:
    """One connection is held for writes and one for reads; a read that starts while
    another is open gets its own, each sees what was committed before it began, and a
    failed write or read leaves the next one working."""
    import asyncio

    from sqlalchemy import text

    database = Database(sqlite_url(tmp_path))
    try:
        async with database.write() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER PRIMARY KEY)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
        inside = asyncio.Event()
        written = asyncio.Event()

        async def long_read() -> list[int]:
            async with database.read() as conn:
                first = (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one()
                inside.set()
                await written.wait()  # another read and a write happen meanwhile
                again = (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one()
            return [first, again]

        reader = asyncio.create_task(long_read())
        await inside.wait()
        async with database.write() as conn:
            await conn.execute(text("INSERT INTO t VALUES (2)"))
        async with database.read() as conn:  # a second read while the first is open
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 2
        written.set()
        assert await reader == [1, 1]  # its snapshot did not move
        with pytest.raises(Exception, match="UNIQUE"):
            async with database.write() as conn:
                await conn.execute(text("INSERT INTO t VALUES (2)"))
        with pytest.raises(Exception, match="no such table"):
            async with database.read() as conn:
                await conn.execute(text("SELECT * FROM nowhere"))
        async with database.write() as conn:
            await conn.execute(text("INSERT INTO t VALUES (3)"))
        async with database.read() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 3
    finally:
        await database.dispose()


async def test_the_hourly_sweep_aborts_an_abandoned_multipart_upload(
        api: Api, s3_env: Any) -> None:
    if api.services.config.blob_store != "s3":
        pytest.skip("multipart uploads are S3's")
    config = api.services.config
    # A process that began an upload of 9 MB (one part sent) and was killed.
    killed = await S3BlobStore.open(config.s3_bucket, config.s3_prefix,
                                    config.s3_endpoint_url)
    writer = await killed.open_writer(new_blob_name())
    for _ in range(9):
        await writer.write(os.urandom(1024 * 1024))
    await killed.close()
    blobs = api.services.blobs
    assert isinstance(blobs, S3BlobStore)
    await jobs.sweep(api.services)
    assert await blobs.incomplete_writes() == 1  # younger than the grace: may be live
    blobs.incomplete_after = timedelta(0)  # as a day later
    await jobs.sweep(api.services)
    assert await blobs.incomplete_writes() == 0
