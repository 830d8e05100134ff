"""Upgrading a catalog that holds data keeps every row and every rule: migration 0017,
which lets both legs of a call be stored by changing the recordings table's unique key
(on SQLite by rebuilding the table that six others refer to)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from recordings_service.config import Config
from storage.database import Database, sqlite_url
from storage.migrate import alembic_config, upgrade

AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC).replace(tzinfo=None)


def _to(revision: str, down: bool = False):  # type: ignore[no-untyped-def]
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)
    return run


@pytest.fixture
async def database(config: Config) -> AsyncIterator[Database]:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(config.database_url.reveal() or sqlite_url(config.data_dir))
    yield db
    await db.dispose()


async def _insert_recording(db: Database, recording_id: str, call_id: str,
                            leg: str | None = None) -> None:
    columns = "id, call_id, started_at, content_type, size_bytes, sha256, state, created_at"
    values = ":id, :call_id, :at, 'audio/wav', 10, :sha, 'active', :at"
    if leg is not None:
        columns, values = columns + ", leg", values + ", :leg"
    async with db.write() as conn:
        await conn.execute(text(f"INSERT INTO recordings ({columns}) VALUES ({values})"),
                           {"id": recording_id, "call_id": call_id, "at": AT,
                            "sha": "0" * 64, "leg": leg})


async def _indexes(db: Database) -> set[str]:
    async with db.read() as conn:
        if db.dialect == "sqlite":
            rows = await conn.execute(text(
                "SELECT name FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'recordings' AND name NOT LIKE 'sqlite_autoindex%'"))
        else:
            # Those not made for a constraint (the unique key is what 0017 changes).
            rows = await conn.execute(text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'recordings' "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint)"))
        return {r[0] for r in rows}


async def test_the_upgrade_to_legs_keeps_every_row_index_and_reference(
        database: Database) -> None:
    db = database
    async with db.schema_change() as conn:
        await conn.run_sync(_to("0016"))
    await _insert_recording(db, "rec_1", "call-1")
    async with db.write() as conn:
        await conn.execute(text(
            "INSERT INTO recording_purposes (recording_id, purpose, legal_basis, expires_at) "
            "VALUES ('rec_1', 'training', 'consent', :at)"), {"at": AT})
        await conn.execute(text("INSERT INTO recording_waveforms (recording_id, sealed) "
                                "VALUES ('rec_1', :sealed)"), {"sealed": b"w"})
    before = await _indexes(db)

    await upgrade(db)

    async with db.read() as conn:
        assert (await conn.execute(text("SELECT id, call_id, leg FROM recordings"))).all() \
            == [("rec_1", "call-1", "mixed")]
        assert (await conn.execute(text(
            "SELECT recording_id FROM recording_purposes"))).scalars().all() == ["rec_1"]
        assert (await conn.execute(text(
            "SELECT recording_id FROM recording_waveforms"))).scalars().all() == ["rec_1"]
    indexes = await _indexes(db)
    assert before <= indexes  # the expression indexes of 0011 included
    # The other leg of the call is a recording of its own; the same leg twice is not.
    await _insert_recording(db, "rec_2", "call-1", "caller")
    with pytest.raises(IntegrityError):
        await _insert_recording(db, "rec_3", "call-1", "mixed")
    # The tables that refer to recordings still do, and are still held to it.
    with pytest.raises(IntegrityError):
        async with db.write() as conn:
            await conn.execute(text(
                "INSERT INTO recording_purposes (recording_id, purpose, legal_basis, "
                "expires_at) VALUES ('rec_none', 'training', 'consent', :at)"), {"at": AT})
    if db.dialect == "sqlite":
        async with db.read() as conn:
            assert (await conn.execute(text("PRAGMA foreign_key_check"))).all() == []
            assert (await conn.execute(text("PRAGMA integrity_check"))).scalar() == "ok"

    # Back down, while no call has two legs, and up again.
    async with db.write() as conn:
        await conn.execute(text("DELETE FROM recordings WHERE id = 'rec_2'"))
    async with db.schema_change() as conn:
        await conn.run_sync(_to("0016", down=True))
    with pytest.raises(IntegrityError):
        await _insert_recording(db, "rec_4", "call-1")
    assert await _indexes(db) == before
    await upgrade(db)
    assert await _indexes(db) == indexes
