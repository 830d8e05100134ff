"""The audit archive: old entries leave the catalog for signed tiles (C2SP tlog-tiles), the
log still verifies and reads the same, an auditor checks the tiles with the public key
alone, and a damaged or missing tile, or an interrupted run, is never a silent loss."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from recordings_service import backup, jobs, restore
from recordings_service.services import open_services
from storage import audit_archive, merkle, tlog_tiles
from storage.blobstore.s3 import S3BlobStore
from storage.errors import AuditChainError
from storage.schema import audit_entries
from storage.signing import public_key_pem
from storage.tilestore.s3 import TILES_PREFIX
from tests import catalog_seed as seed
from tests.audio import wav_tone
from tests.conftest import Api
from tests.integration.helpers import run_cli

SEEDED = 1_000
# Whole bundles of 256 go to the archive: the 1,000 old entries make three.
MOVED = 768


async def _old_entries_then_activity(api: Api, checkpoint: bool = True) -> None:
    await seed.seed_audit(api.services.database, SEEDED, api.clock())
    api.clock.advance(days=30)
    rec = await api.uploaded(wav_tone(0.1))
    assert (await api.audio(rec["id"], "training", "supervisor")).status == 200
    if checkpoint:
        await jobs.checkpoint(api.services)


async def _pages(api: Api, **query: str) -> tuple[list[dict[str, Any]], int]:
    """Every entry a reader gets by following next_cursor, and how many pages it took."""
    items, cursor, pages = [], None, 0
    while True:
        params = {"limit": "300", **query, **({"cursor": cursor} if cursor else {})}
        response = await api.client.get("/v1/audit", params=params,
                                         headers=api.auth("auditor"))
        assert response.status == 200, await response.text()
        body = await response.json()
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages


async def _catalog_seqs(api: Api) -> tuple[int, int]:
    async with api.services.database.read() as conn:
        low, count = (await conn.execute(
            select(func.min(audit_entries.c.seq), func.count()))).one()
    return int(low), int(count)


async def _verify(api: Api, full: bool) -> dict[str, Any]:
    response = await api.client.get("/v1/audit/verify", params={"full": str(full).lower()},
                                    headers=api.auth("auditor"))
    assert response.status == 200
    return await response.json()  # type: ignore[no-any-return]


async def test_old_entries_move_to_tiles_and_the_log_reads_and_verifies_the_same(
        api: Api) -> None:
    await _old_entries_then_activity(api)
    before, _ = await _pages(api)

    result = await jobs.archive_audit(api.services, after_days=10)

    assert result["moved"] == MOVED and result["archived_entries"] == MOVED
    low, _ = await _catalog_seqs(api)
    assert low == MOVED + 1
    recent, _ = await _pages(api)
    assert recent[0]["seq"] == MOVED + 1
    everything, pages = await _pages(api, archived="true")
    assert [e for e in everything if e["seq"] <= len(before)] == before
    assert pages > 1
    # The run itself is audited, as are the reads.
    assert any(e["action"] == "audit_archive" and e["actor"] == "system:audit"
               for e in everything)
    full = await _verify(api, full=True)
    assert full["ok"] is True, full["problems"]
    assert full["entries"] >= everything[-1]["seq"]
    incremental = await _verify(api, full=False)
    assert incremental["ok"] is True and incremental["full"] is False


async def test_filters_read_the_archive_in_bounded_steps(api: Api) -> None:
    await _old_entries_then_activity(api)
    wanted = [e for e in (await _pages(api))[0] if e["actor"] == "supervisor-7"]
    await jobs.archive_audit(api.services, after_days=10)
    assert [e for e in await api.audit(actor="supervisor-7")
            if e["seq"] <= MOVED] == []  # a search stays in the catalog
    found, _ = await _pages(api, actor="supervisor-7", archived="true")
    assert [e["seq"] for e in found] == [e["seq"] for e in wanted]


async def test_only_entries_a_checkpoint_covers_are_archived(api: Api) -> None:
    # Old entries no checkpoint covers fail verification once stale; here they are
    # not stale yet, and still must stay.
    api.services.config = api.services.config.with_overrides(stale_after_seconds=10**9)
    await seed.seed_audit(api.services.database, SEEDED, api.clock())
    covered = (await jobs.checkpoint(api.services)).size
    await seed.seed_audit(api.services.database, SEEDED, api.clock())
    api.clock.advance(days=30)

    result = await jobs.archive_audit(api.services, after_days=10)

    assert result["archived_entries"] == covered // 256 * 256 == MOVED


async def test_a_log_that_does_not_verify_is_not_archived(api: Api) -> None:
    await _old_entries_then_activity(api)
    async with api.services.database.write() as conn:
        await conn.execute(update(audit_entries).where(audit_entries.c.seq == 300)
                           .values(entry=b'{"seq":300}'))
    _, count = await _catalog_seqs(api)
    with pytest.raises(AuditChainError):
        await jobs.archive_audit(api.services, after_days=10)
    low, after = await _catalog_seqs(api)
    assert low == 1 and after >= count  # (verification adds its own entry)
    assert await api.services.tiles.get(tlog_tiles.CHECKPOINT) is None


async def test_an_edited_archive_fails_verification(api: Api) -> None:
    await _old_entries_then_activity(api)
    await jobs.archive_audit(api.services, after_days=10)
    tiles = api.services.tiles
    # Entry 300 rewritten with its leaf hash and the chain after it recomputed: only the
    # signed root can tell.
    rows = await audit_archive.read_bundle(tiles, 1)
    entries = [r.entry for r in rows]
    entries[300 - 257] = entries[300 - 257].replace(b'"outcome":"allowed"',
                                                    b'"outcome":"denied"')
    leaves = [merkle.leaf_hash(e) for e in entries]
    chain = [rows[0].prev_hash]
    for leaf in leaves:
        chain.append(merkle.chain_hash(chain[-1], leaf))
    await tiles.put(tlog_tiles.bundle_path(1), tlog_tiles.encode_bundle(entries))
    await tiles.put(tlog_tiles.tile_path(0, 1), b"".join(leaves))
    await tiles.put(tlog_tiles.chain_path(1), b"".join(chain))

    report = await _verify(api, full=True)

    assert report["ok"] is False
    assert any("level" in p or "root" in p or "disagrees" in p or "chain" in p
               for p in report["problems"]), report["problems"]


async def test_a_missing_tile_is_reported_never_skipped(api: Api) -> None:
    await _old_entries_then_activity(api)
    await jobs.archive_audit(api.services, after_days=10)
    await _lose_tile(api, tlog_tiles.bundle_path(2))

    report = await _verify(api, full=True)
    assert report["ok"] is False and report["first_bad_seq"] == 513
    assert any("tile/entries/002" in p for p in report["problems"])
    response = await api.client.get("/v1/audit", params={"archived": "true",
                                                         "cursor": _cursor(600)},
                                    headers=api.auth("auditor"))
    assert response.status == 500
    assert (await response.json())["reason"] == "audit_archive_damaged"


async def _lose_tile(api: Api, path: str) -> None:
    blobs = api.services.blobs
    if isinstance(blobs, S3BlobStore):
        await blobs.client.delete_object(Bucket=blobs.bucket,
                                         Key=f"{blobs.prefix}{TILES_PREFIX}{path}")
    else:
        (api.services.config.data_dir / "audit-tiles" / path).unlink()


def _cursor(seq: int) -> str:
    from recordings_service.audit_reading import encode_cursor
    return encode_cursor(seq)


async def test_an_interrupted_run_leaves_the_log_whole_and_the_next_run_finishes(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    await _old_entries_then_activity(api)
    tiles = api.services.tiles
    real_put = tiles.put

    async def fail_at_checkpoint(path: str, data: bytes) -> None:
        if path == tlog_tiles.CHECKPOINT:
            raise OSError("the disk is full")
        await real_put(path, data)

    monkeypatch.setattr(tiles, "put", fail_at_checkpoint)
    with pytest.raises(OSError):
        await jobs.archive_audit(api.services, after_days=10)
    assert (await _catalog_seqs(api))[0] == 1  # nothing left the catalog
    assert (await _verify(api, full=True))["ok"] is True
    monkeypatch.undo()

    # Crashed after the statement was committed, before the entries were deleted.
    real_prune = audit_archive.prune

    async def crash_before_pruning(database: Any, size: int) -> int:
        return 0 if size else await real_prune(database, size)

    monkeypatch.setattr(audit_archive, "prune", crash_before_pruning)
    await jobs.archive_audit(api.services, after_days=10)
    assert (await _catalog_seqs(api))[0] == 1
    assert (await _verify(api, full=True))["ok"] is True
    monkeypatch.undo()

    result = await jobs.archive_audit(api.services, after_days=10)
    assert result["moved"] == 0
    assert (await _catalog_seqs(api))[0] == MOVED + 1
    assert (await _verify(api, full=True))["ok"] is True


async def test_an_auditor_checks_a_copy_of_the_tiles_offline(
        api: Api, tmp_path: Path) -> None:
    if api.services.config.blob_store != "filesystem":
        pytest.skip("the copy is the filesystem store's directory")
    await _old_entries_then_activity(api)
    await jobs.archive_audit(api.services, after_days=10)
    key = tmp_path / "audit.pem"
    key.write_text(public_key_pem(api.services.signing_key.public_key()))
    copy = api.services.config.data_dir / "audit-tiles"
    work = tmp_path / "work"

    ok = run_cli(work, "audit", "verify-tiles", str(copy), "--public-key", str(key))
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["ok"] is True and report["entries"] == MOVED
    async with api.services.database.read() as conn:
        first = (await conn.execute(select(audit_entries.c.prev_hash)
                                    .where(audit_entries.c.seq == MOVED + 1))).scalar_one()
    assert report["chain_hash"] == first.hex()  # where the catalog takes over

    level1 = copy / tlog_tiles.tile_path(1, 0, MOVED // 256)
    level1.write_bytes(level1.read_bytes()[:-1] + b"\x00")
    bad = run_cli(work, "audit", "verify-tiles", str(copy), "--public-key", str(key))
    assert bad.returncode == 1
    assert any("tile/1/000.p/3" in p for p in json.loads(bad.stdout)["problems"])


async def test_a_backup_carries_the_archive_and_a_restore_verifies_with_it(
        api: Api, tmp_path: Path) -> None:
    if api.services.config.database_url:
        pytest.skip("a PostgreSQL catalog is restored with pg_dump/PITR, not by restore")
    await _old_entries_then_activity(api)
    await jobs.archive_audit(api.services, after_days=10)
    dest = tmp_path / "backup"
    first = await backup.backup(api.services, dest)
    assert first.manifest["audit_archive"]["size"] == MOVED

    # What the backup holds is checked offline like the store's own tiles.
    key = tmp_path / "audit.pem"
    key.write_text(public_key_pem(api.services.signing_key.public_key()))
    offline = run_cli(tmp_path / "work", "audit", "verify-tiles", str(dest / backup.TILES),
                      "--public-key", str(key))
    assert offline.returncode == 0, offline.stdout
    # A second backup copies none of the tiles again (they are immutable).
    before = {p: p.stat().st_mtime_ns for p in (dest / backup.TILES).rglob("*")
              if p.is_file() and "tile" in p.parts}
    api.clock.advance(seconds=1)
    await backup.backup(api.services, dest)
    assert {p: p.stat().st_mtime_ns for p in before} == before

    target = api.services.config.with_overrides(
        data_dir=tmp_path / "restored", root_key_file=api.services.config.root_key_path)
    report = await restore.restore(target, api.clock, dest, None, [])
    assert report.audit_ok  # a full verification, through the restored tiles
    async with open_services(target, api.clock) as services:
        assert await services.tiles.get(tlog_tiles.bundle_path(0)) == \
            await api.services.tiles.get(tlog_tiles.bundle_path(0))
