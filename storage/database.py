"""The catalog's database: SQLite (WAL) by default, PostgreSQL to scale out.

SQLite statements run synchronously on the event loop's thread: an indexed statement takes
microseconds, and handing each statement to a driver thread, as an async SQLite driver must,
cost several round trips per statement and made the catalog, not the disk, the limit
(docs/benchmarks.md). Only a commit, with its fsync (about 0.5 ms here) and any WAL
checkpoint, goes to a worker thread, once per transaction. Writers take an asyncio lock and
start with ``BEGIN IMMEDIATE`` so that ``serve``, its extra workers and a CLI command
serialize; when another process holds the write lock, the begin is retried after an
asynchronous sleep instead of blocking the loop. Reads whose cost is not bounded by an
index (audit verification, backup's walk of the catalog, ``keys status``) use
``long_read``: on SQLite their own connection, each statement in a worker thread, so
nobody else's request waits for them. Purge runs and exports read a bounded page at a
time and let the loop run between pages.
PostgreSQL uses asyncpg, and appends serialize there with ``SELECT … FOR UPDATE``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import CursorResult, Dialect, FrozenResult, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql import Executable

from storage.threads import run_to_end

# The database whose write transaction the running task is in (Database.write).
_WRITING: ContextVar[object | None] = ContextVar("writing", default=None)

T = TypeVar("T")
log = logging.getLogger(__name__)

# How long a writer waits, in total, for another process to release SQLite's write lock.
WRITE_LOCK_WAIT = 30.0
# Tries at emptying the WAL after an erasure, 0.1 s apart (truncate_wal).
TRUNCATE_ATTEMPTS = 50


class Conn(Protocol):
    """What catalog code needs of a connection: the async one or the SQLite adapter."""

    async def execute(self, statement: Executable,
                      parameters: Any = None) -> CursorResult[*tuple[Any, ...]]: ...

    async def run_sync(self, fn: Callable[[Connection], T]) -> T: ...

    @property
    def dialect(self) -> Dialect: ...

    def begin_nested(self) -> AbstractAsyncContextManager[Any]:
        """A savepoint: leaving it by an exception rolls back what was done inside."""


class _SyncConn:
    """Presents a synchronous SQLAlchemy connection with the async call shape."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @property
    def dialect(self) -> Dialect:
        return self._conn.dialect

    async def execute(self, statement: Executable,
                      parameters: Any = None) -> CursorResult[*tuple[Any, ...]]:
        if parameters is None:
            return self._conn.execute(statement)
        return self._conn.execute(statement, parameters)

    async def run_sync(self, fn: Callable[[Connection], T]) -> T:
        return fn(self._conn)

    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        with self._conn.begin_nested():
            yield


class _ThreadConn:
    """A synchronous connection whose statements each run in a worker thread (SQLite
    releases the GIL while it steps), their rows fetched there too: the loop serves other
    requests while a long read runs."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @property
    def dialect(self) -> Dialect:
        return self._conn.dialect

    async def execute(self, statement: Executable,
                      parameters: Any = None) -> CursorResult[*tuple[Any, ...]]:
        def run() -> Any:
            result = (self._conn.execute(statement) if parameters is None
                      else self._conn.execute(statement, parameters))
            return result.freeze() if result.returns_rows else result

        out = await run_to_end(run)
        # A frozen result replays its rows with the same reading methods (all, first,
        # scalar_one, iteration) that callers use on a cursor result.
        return cast(CursorResult[*tuple[Any, ...]],
                    out() if isinstance(out, FrozenResult) else out)

    async def run_sync(self, fn: Callable[[Connection], T]) -> T:
        return await run_to_end(lambda: fn(self._conn))

    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        nested = await run_to_end(self._conn.begin_nested)
        try:
            yield
        except BaseException:
            await run_to_end(nested.rollback)
            raise
        await run_to_end(nested.commit)


def async_url(url: str) -> str:
    """Maps the URL an operator writes to the driver we ship."""
    parsed = make_url(url)
    driver = {"postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg",
              "sqlite": "sqlite+pysqlite", "sqlite+aiosqlite": "sqlite+pysqlite"}.get(
        parsed.drivername, parsed.drivername)
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'catalog.sqlite3'}"


def _sqlite_engine(url: str, begin: str, busy_ms: int) -> Engine:
    # Checkout must never block the loop: the pool grows instead (connections are cheap).
    # hide_parameters: error messages must not carry call ids, customer ids or numbers.
    engine = create_engine(url, poolclass=QueuePool, pool_size=8, max_overflow=-1,
                           hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from pysqlite so SQLAlchemy's transactions are real ones.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Overwrite deleted content, so a destroyed data key does not linger in free pages.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


def _is_busy(exc: OperationalError) -> bool:
    orig = exc.orig
    return isinstance(orig, sqlite3.OperationalError) and (
        "locked" in str(orig) or "busy" in str(orig))


# PostgreSQL connections each process keeps open: at least the requests it serves at
# once, or every checkout beyond them opens a connection and closes it again (a measured
# third of an audited access's cost at 32 concurrent clients: docs/benchmarks.md).
DEFAULT_POOL_SIZE = 32


class Database:
    def __init__(self, url: str, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        self.url = async_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        self._async: AsyncEngine | None = None
        if self.dialect == "sqlite":
            # The writer never waits inside SQLite (busy_timeout 0): it retries asynchronously.
            self._writer = _sqlite_engine(self.url, "BEGIN IMMEDIATE", busy_ms=0)
            # Writes are one at a time (the lock below): one connection held for them all
            # saves a pool checkout and return per transaction.
            self._writer_conn: Connection | None = None
            # Reads run to the end without yielding to the loop, so one held connection
            # serves nearly all of them; the pool serves a read that starts while another
            # is open (a caller awaiting something else inside its read).
            self._reader_conn: Connection | None = None
            self._reader_busy = False
            # WAL readers do not wait for writers; the short timeout covers WAL recovery.
            self._reader = _sqlite_engine(self.url, "BEGIN", busy_ms=200)
            self._write_lock = asyncio.Lock()
        else:
            # pool_pre_ping: a connection PostgreSQL dropped (restart, failover, idle
            # timeout) is replaced at checkout instead of failing the request that gets it.
            # The overflow is for bursts past the pool (its connections are closed again).
            self._async = create_async_engine(self.url, pool_size=pool_size,
                                              max_overflow=pool_size // 2,
                                              hide_parameters=True, pool_pre_ping=True)
            # Reads run outside a transaction: at PostgreSQL's READ COMMITTED each
            # statement sees its own snapshot inside one too, and BEGIN and COMMIT are
            # two round trips every read (several per audited access) would pay.
            self._async_reads: AsyncEngine = self._async.execution_options(
                isolation_level="AUTOCOMMIT")

    def holds_write(self) -> bool:
        """Whether the running task is inside a write transaction of this database."""
        return _WRITING.get() is self

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Conn]:
        # The SQLite writer's lock is not reentrant: a write begun (here, or by a task this
        # one waits on, such as the audit log's group commit) inside another would wait
        # for itself. Known per task, so callers can refuse to (auditing.record).
        token = _WRITING.set(self)
        try:
            async with self._write(self._async) as conn:
                yield conn
        finally:
            _WRITING.reset(token)

    @asynccontextmanager
    async def _write(self, engine: AsyncEngine | None) -> AsyncIterator[Conn]:
        if engine is not None:
            async with engine.begin() as async_conn:
                yield async_conn
            return
        async with self._write_lock:
            if self._writer_conn is None:
                self._writer_conn = self._writer.connect()
            sync_conn = self._writer_conn
            try:
                await self._begin_immediate(sync_conn)
                try:
                    yield _SyncConn(sync_conn)
                except BaseException:
                    sync_conn.rollback()
                    raise
                # The commit's fsync (and any WAL checkpoint it triggers) happens in a
                # worker thread: the loop serves other requests meanwhile, which is what
                # lets audit entries queue up for the next group commit.
                await run_to_end(sync_conn.commit)
            except BaseException:
                # Whatever state a failure left it in, the next write starts on a new one.
                self._writer_conn = None
                sync_conn.close()
                raise

    @asynccontextmanager
    async def schema_change(self) -> AsyncIterator[Conn]:
        """A write for migrations. On SQLite with foreign keys off, since a table is changed
        by rebuilding it (dropping the old one would otherwise take the rows that refer to
        it, or fail), and checked before the commit: SQLite's own procedure for it. A
        connection of its own, discarded after."""
        if self._async is not None:
            async with self.write() as conn:
                yield conn
            return
        token = _WRITING.set(self)
        try:
            async with self._write_lock:
                sync_conn = self._writer.connect()
                try:
                    # Outside a transaction, or SQLite ignores it: on the driver's own
                    # connection, before SQLAlchemy begins one.
                    sync_conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                        "PRAGMA foreign_keys=OFF")
                    await self._begin_immediate(sync_conn)
                    try:
                        yield _SyncConn(sync_conn)
                        broken = sync_conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                        if broken:
                            raise RuntimeError(f"the migration left {len(broken)} rows "
                                               f"referring to rows that are gone")
                    except BaseException:
                        sync_conn.rollback()
                        raise
                    await run_to_end(sync_conn.commit)
                finally:
                    # Discarded, not returned to the pool: no later write may get a
                    # connection with foreign keys off.
                    sync_conn.invalidate()
                    sync_conn.close()
        finally:
            _WRITING.reset(token)

    async def _begin_immediate(self, conn: Connection) -> None:
        delay, waited = 0.001, 0.0
        while True:
            try:
                conn.begin()
                return
            except OperationalError as exc:
                if not _is_busy(exc) or waited >= WRITE_LOCK_WAIT:
                    raise
                conn.rollback()
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.05)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Conn]:
        if self._async is not None:
            async with self._async_reads.connect() as async_conn:
                yield async_conn
            return
        if self._reader_busy:
            with self._reader.connect() as sync_conn, sync_conn.begin():
                yield _SyncConn(sync_conn)
            return
        if self._reader_conn is None:
            self._reader_conn = self._reader.connect()
        held = self._reader_conn
        self._reader_busy = True
        try:
            with held.begin():
                yield _SyncConn(held)
        except SQLAlchemyError:
            # The database said no (a lost file, a corrupt page): start the next on a new one.
            self._reader_conn = None
            held.close()
            raise
        finally:
            self._reader_busy = False

    @asynccontextmanager
    async def long_read(self) -> AsyncIterator[Conn]:
        """A read that may take long (many rows, or a caller doing work between its
        statements): on SQLite its own connection with every statement in a worker thread,
        so that it never holds the event loop; on PostgreSQL the driver is asynchronous
        already. On SQLite one snapshot for the whole body, as with ``read``."""
        if self._async is not None:
            async with self._async.begin() as async_conn:
                yield async_conn
            return
        sync_conn = await run_to_end(self._reader.connect)
        try:
            await run_to_end(sync_conn.begin)
            try:
                yield _ThreadConn(sync_conn)
            finally:
                # Nothing was written: ending the transaction only releases the snapshot.
                await run_to_end(sync_conn.rollback)
        finally:
            await run_to_end(sync_conn.close)

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        """Whether this process holds ``name`` (a job) across every process sharing the
        catalog, for the body of the ``with``. PostgreSQL: a session advisory lock on a
        connection of its own, released when the body ends or the connection dies (a
        killed replica frees its jobs). SQLite: one host, where one process runs the jobs:
        always held."""
        if self._async is None:
            yield True
            return
        key = int.from_bytes(hashlib.sha256(b"recordings-job:" + name.encode()).digest()[:8],
                             "big", signed=True)
        async with self._async.connect() as conn:
            held = bool((await conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                            {"k": key})).scalar())
            await conn.commit()
            try:
                yield held
            finally:
                if held:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    await conn.commit()

    def sync_engines(self) -> list[Engine]:
        """The engines statements run on, for event listeners (tests watch the queries)."""
        if self._async is not None:
            return [self._async.sync_engine]
        return [self._writer, self._reader]

    async def explain(self, statement: str, parameters: Any) -> list[str]:
        """The database's plan for a statement as its driver received it: which index
        serves a query (tests/integration/test_query_plans.py). On PostgreSQL sequential
        scans are priced out first: on a table of a few thousand rows the planner rightly
        prefers one, and what matters is that an index serves the query when it is large."""
        if self._async is not None:
            async with self._async.connect() as conn, conn.begin():
                await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
                rows = await conn.exec_driver_sql("EXPLAIN " + statement, parameters)
                return [str(r[0]) for r in rows]
        with self._reader.connect() as sync_conn:
            plan = sync_conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            # (id, parent, notused, detail)
            return [str(r[-1]) for r in plan]

    async def truncate_wal(self) -> None:
        """SQLite: copy the write-ahead log into the database and empty it, so page images
        of deleted rows (destroyed data keys) do not survive in the log file."""
        if self.dialect != "sqlite":
            return
        path = make_url(self.url).database
        assert path is not None

        def checkpoint() -> bool:
            # Its own connection, outside any transaction, in a thread. While it waits for
            # readers it holds writers off, and the service's writers run on the event loop:
            # so it waits briefly and tries again, rather than waiting long once (a CI run
            # saw the loop held 9 s behind a checkpoint that waited on a reader).
            db = sqlite3.connect(path, isolation_level=None, timeout=0.05)
            try:
                row = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                return row is not None and row[0] == 0
            except sqlite3.OperationalError:
                return False
            finally:
                db.close()

        for _ in range(TRUNCATE_ATTEMPTS):
            if await asyncio.to_thread(checkpoint):
                return
            await asyncio.sleep(0.1)
        log.warning("the write-ahead log could not be emptied now (readers kept it); "
                    "SQLite's own checkpoints empty it later")

    async def dispose(self) -> None:
        if self._async is not None:
            await self._async.dispose()
        else:
            for held in (self._writer_conn, self._reader_conn):
                if held is not None:
                    held.close()
            self._writer_conn = self._reader_conn = None
            self._writer.dispose()
            self._reader.dispose()
