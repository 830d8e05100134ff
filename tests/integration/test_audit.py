"""The audit log: a gapless hash chain, signed checkpoints, and verification that catches
an edited, deleted or reordered entry and a truncated tail."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import delete, select, update

from recordings_service import auditing, jobs
from recordings_service.auth import Actor
from storage import merkle
from storage.schema import audit_checkpoints, audit_entries, audit_head, audit_verifications
from tests import catalog_seed as seed
from tests.audio import wav_tone
from tests.conftest import Api
from tests.integration.helpers import run_cli
from tests.rfc6962 import reference_root


async def _activity(api: Api, n: int = 3) -> None:
    for i in range(n):
        rec = await api.uploaded(wav_tone(0.1, frequency=300 + i), call_id=f"c{i}")
        await api.audio(rec["id"], "training", "supervisor")
        await api.audio(rec["id"], "security", "supervisor")  # denied


async def _verify(api: Api) -> dict[str, object]:
    response = await api.client.get("/v1/audit/verify", headers=api.auth("auditor"))
    assert response.status == 200
    return await response.json()  # type: ignore[no-any-return]


async def test_entries_form_a_gapless_hash_chain(api: Api) -> None:
    await _activity(api)
    entries = await api.audit()
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0]["prev_hash"] == "00" * 32
    for previous, entry in itertools.pairwise(entries):
        assert entry["prev_hash"] == previous["hash"]
    fields = {"seq", "at", "actor", "roles", "action", "recording_id", "purpose", "outcome",
              "reason", "client_ip", "request_id", "detail", "prev_hash", "hash"}
    assert all(set(e) == fields for e in entries)


async def test_a_clean_log_verifies(api: Api) -> None:
    await _activity(api)
    await jobs.checkpoint(api.services)
    report = await _verify(api)
    assert report["ok"] is True
    assert report["first_bad_seq"] is None
    assert report["checkpoints"] >= 2  # one at start, one now
    assert report["stale"] is False


async def _tamper_and_verify(api: Api, statement: object) -> dict[str, object]:
    async with api.services.database.write() as conn:
        await conn.execute(statement)  # type: ignore[call-overload]
    return await _verify(api)


async def test_verify_catches_an_edited_entry(api: Api) -> None:
    await _activity(api)
    async with api.services.database.read() as conn:
        row = (await conn.execute(select(audit_entries).where(audit_entries.c.seq == 4))).one()
    edited = row.entry.replace(b'"outcome":"', b'"outcome":"x')
    report = await _tamper_and_verify(
        api, update(audit_entries).where(audit_entries.c.seq == 4).values(entry=edited))
    assert report["ok"] is False and report["first_bad_seq"] == 4


async def test_verify_catches_a_deleted_entry(api: Api) -> None:
    await _activity(api)
    report = await _tamper_and_verify(api, delete(audit_entries).where(audit_entries.c.seq == 5))
    assert report["ok"] is False and report["first_bad_seq"] == 5


async def test_verify_catches_reordered_entries(api: Api) -> None:
    await _activity(api)
    async with api.services.database.write() as conn:
        rows = {r.seq: r for r in (await conn.execute(
            select(audit_entries).where(audit_entries.c.seq.in_([6, 7])))).all()}
        for seq, other in ((6, 7), (7, 6)):
            await conn.execute(update(audit_entries).where(audit_entries.c.seq == seq).values(
                entry=rows[other].entry, leaf_hash=rows[other].leaf_hash))
    report = await _verify(api)
    assert report["ok"] is False and report["first_bad_seq"] == 6


async def test_verify_catches_a_consistent_rewrite_through_the_checkpoint(api: Api) -> None:
    """An attacker rewrites an entry and recomputes every hash after it: only the signed
    checkpoint still remembers the old root."""
    await _activity(api)
    await jobs.checkpoint(api.services)
    async with api.services.database.write() as conn:
        rows = (await conn.execute(select(audit_entries).order_by(audit_entries.c.seq))).all()
        chain, frontier = merkle.GENESIS, []
        for row in rows:
            entry = row.entry.replace(b'"supervisor"', b'"someone_else"') \
                if row.seq == 3 else row.entry
            leaf = merkle.leaf_hash(entry)
            new_chain = merkle.chain_hash(chain, leaf)
            frontier = merkle.frontier_append(frontier, row.seq - 1, leaf)
            await conn.execute(update(audit_entries).where(audit_entries.c.seq == row.seq)
                               .values(entry=entry, leaf_hash=leaf, prev_hash=chain,
                                       chain_hash=new_chain))
            chain = new_chain
        await conn.execute(update(audit_head).values(
            chain_hash=chain, frontier=json.dumps([h.hex() for h in frontier])))
    report = await _verify(api)
    assert report["ok"] is False


async def test_verify_catches_a_truncated_tail(api: Api) -> None:
    await _activity(api)
    await jobs.checkpoint(api.services)
    async with api.services.database.write() as conn:
        size = (await conn.execute(select(audit_head.c.size))).scalar_one()
        keep = size - 3
        kept = (await conn.execute(select(audit_entries).where(audit_entries.c.seq == keep))
                ).one()
        await conn.execute(delete(audit_entries).where(audit_entries.c.seq > keep))
        # The attacker also deletes the database's checkpoints and fixes the head...
        await conn.execute(delete(audit_checkpoints))
        await conn.execute(update(audit_head).values(size=keep, chain_hash=kept.chain_hash))
    report = await _verify(api)
    # ...but the mirrored checkpoints outside the database still cover the deleted tail.
    assert report["ok"] is False
    assert report["first_bad_seq"] == keep + 1


async def test_checkpoints_verify_offline_with_only_the_public_key(api: Api) -> None:
    await _activity(api, 1)
    await jobs.checkpoint(api.services)
    pem = await (await api.client.get("/v1/audit/public-key", headers=api.auth("auditor"))
                 ).text()
    key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(key, Ed25519PublicKey)
    listed = await (await api.client.get("/v1/audit/checkpoints", headers=api.auth("auditor"))
                    ).json()
    newest = listed["items"][0]
    text, _, signature_line = newest["note"].rpartition("\n\n")
    name, blob = signature_line.strip().removeprefix("\u2014 ").split(" ")
    raw = base64.b64decode(blob)
    raw_key = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert raw[:4] == hashlib.sha256(name.encode() + b"\n\x01" + raw_key).digest()[:4]
    key.verify(raw[4:], (text + "\n").encode())  # raises if forged
    origin, size, root = text.split("\n")[:3]
    assert origin == listed["origin"]
    # Recompute the Merkle root from the served entries, independently of the service.
    entries = await api.audit()
    async with api.services.database.read() as conn:
        stored = [r.entry for r in (await conn.execute(
            select(audit_entries.c.entry).where(audit_entries.c.seq <= int(size))
            .order_by(audit_entries.c.seq))).all()]
    assert len(entries) >= int(size)
    assert base64.b64decode(root) == reference_root([merkle.leaf_hash(e) for e in stored])


async def test_audit_is_for_auditors_and_compliance_and_reads_are_audited(api: Api) -> None:
    await _activity(api, 1)
    for role, status in (("supervisor", 403), ("ingest", 403), ("compliance", 200),
                         ("auditor", 200)):
        response = await api.client.get("/v1/audit", headers=api.auth(role))
        assert response.status == status, role
    reads = await api.audit(action="audit_read")
    assert {e["actor"] for e in reads} >= {"compliance", "auditor"}


async def test_audit_filters_and_pagination(api: Api) -> None:
    await _activity(api, 3)
    denied = await api.audit(outcome="denied", action="stream")
    assert len(denied) == 3 and all(e["reason"] == "purpose_not_allowed" for e in denied)
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": "2", "action": "stream"} | ({"cursor": cursor} if cursor else {})
        page = await (await api.client.get("/v1/audit", params=params,
                                           headers=api.auth("auditor"))).json()
        seen += [e["seq"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 6 and seen == sorted(seen)
    bad = await api.client.get("/v1/audit", params={"cursor": "nonsense!"},
                               headers=api.auth("auditor"))
    assert bad.status == 400 and (await bad.json())["reason"] == "invalid_cursor"


def test_cli_audit_verify_exit_codes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = run_cli(data, "tokens", "create", "--name", "ops", "--role", "auditor")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().splitlines()[-1].startswith("rst_")
    assert run_cli(data, "audit", "checkpoint").returncode == 0
    good = run_cli(data, "audit", "verify")
    assert good.returncode == 0, good.stdout + good.stderr
    assert json.loads(good.stdout)["ok"] is True

    import sqlite3
    with sqlite3.connect(data / "catalog.sqlite3") as db:
        db.execute("UPDATE audit_entries SET entry = CAST(REPLACE(CAST(entry AS TEXT), "
                   "'auditor', 'admin') AS BLOB) WHERE seq = 1")
    bad = run_cli(data, "audit", "verify")
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["first_bad_seq"] == 1
    assert "seq 1" in bad.stderr


def test_cli_tokens_list_and_revoke(tmp_path: Path) -> None:
    data = tmp_path / "data"
    token = run_cli(data, "tokens", "create", "--name", "pbx", "--role", "ingest",
                 "--role", "supervisor").stdout.strip().splitlines()[-1]
    listed = json.loads(run_cli(data, "tokens", "list").stdout)
    assert listed[0]["name"] == "pbx" and listed[0]["roles"] == ["ingest", "supervisor"]
    assert token not in run_cli(data, "tokens", "list").stdout
    assert run_cli(data, "tokens", "create", "--name", "pbx", "--role", "ingest").returncode == 2
    assert run_cli(data, "tokens", "revoke", "--name", "pbx").returncode == 0
    assert run_cli(data, "tokens", "revoke", "--name", "pbx").returncode == 1
    assert json.loads(run_cli(data, "tokens", "list").stdout)[0]["revoked_at"] is not None


def test_cli_purge_dry_run_and_real(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run_cli(data, "tokens", "create", "--name", "x", "--role", "compliance").returncode == 0
    dry = run_cli(data, "purge", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["dry_run"] is True
    real = json.loads(run_cli(data, "purge").stdout)
    assert real["dry_run"] is False and real["purged"] == [] and real["actor"] == \
        "system:retention"


async def _verify_full(api: Api) -> dict[str, object]:
    response = await api.client.get("/v1/audit/verify", params={"full": "true"},
                                    headers=api.auth("auditor"))
    assert response.status == 200
    return await response.json()  # type: ignore[no-any-return]


async def test_verification_goes_on_from_its_last_signed_statement(api: Api) -> None:
    await _activity(api)
    first = await _verify(api)
    assert first["ok"] and first["full"] and first["verified_from"] == 0
    assert first["last_full_at"] is not None
    await seed.seed_audit(api.services.database, 1_200, api.clock())
    await jobs.checkpoint(api.services)
    second = await _verify(api)
    assert second["ok"] and not second["full"], second
    # What the first run verified (its own audit entry came after it) is not read again.
    assert second["verified_from"] == first["entries"]
    assert second["checked"] == second["entries"] - first["entries"] >= 1_200
    assert second["last_full_at"] == first["last_full_at"]
    again = await _verify_full(api)
    assert again["ok"] and again["full"] and again["checked"] == again["entries"]


async def test_an_incremental_verification_sees_edits_after_and_at_its_statement(
        api: Api) -> None:
    await _activity(api)
    await _verify(api)
    for _ in range(3):
        await api.audit()  # each read is audited
    async with api.services.database.read() as conn:
        size = (await conn.execute(select(audit_head.c.size))).scalar_one()
    async with api.services.database.write() as conn:
        await conn.execute(update(audit_entries).where(audit_entries.c.seq == size - 1)
                           .values(actor="someone-else"))
    report = await _verify(api)
    assert not report["ok"] and not report["full"]
    assert report["first_bad_seq"] == size - 1


async def test_an_edit_the_spot_checks_miss_is_found_by_a_full_verification(
        api: Api) -> None:
    await seed.seed_audit(api.services.database, 3_000, api.clock())
    await jobs.checkpoint(api.services)
    assert (await _verify(api))["ok"]
    entries = await api.audit(action="search")
    # Edited consistently with its own leaf hash, but not with the chain after it: an
    # incremental run sees it only if its random sample takes it (256 in 3,000).
    victim = entries[0]["seq"]
    async with api.services.database.write() as conn:
        row = (await conn.execute(select(audit_entries).where(
            audit_entries.c.seq == victim))).one()
        forged = row.entry.replace(b'"outcome":"allowed"', b'"outcome":"denied"')
        await conn.execute(update(audit_entries).where(audit_entries.c.seq == victim).values(
            entry=forged, leaf_hash=merkle.leaf_hash(forged), outcome="denied"))
    full = await _verify_full(api)
    assert not full["ok"] and full["first_bad_seq"] == victim


async def test_a_forged_statement_is_ignored_and_deleted_entries_are_seen(api: Api) -> None:
    await _activity(api)
    assert (await _verify(api))["ok"]
    async with api.services.database.write() as conn:
        note = (await conn.execute(select(audit_verifications.c.note))).scalar_one()
        # Claims more verified than was (so that a run would skip entries): unsigned.
        forged = note.replace("\nsize ", "\nsize 9")
        await conn.execute(update(audit_verifications).values(note=forged))
    report = await _verify(api)
    assert report["ok"] and report["full"]  # from the first entry: the signature failed
    async with api.services.database.write() as conn:
        size = (await conn.execute(select(audit_head.c.size))).scalar_one()
        await conn.execute(delete(audit_entries).where(audit_entries.c.seq > size - 2))
        await conn.execute(update(audit_head).values(size=size - 2))
    cut = await _verify(api)
    assert not cut["ok"] and cut["first_bad_seq"] is not None


async def test_a_rewritten_log_makes_a_short_report(api: Api) -> None:
    await seed.seed_audit(api.services.database, 500, api.clock())
    await jobs.checkpoint(api.services)
    async with api.services.database.write() as conn:
        await conn.execute(update(audit_entries).values(actor="someone-else"))
    report = await _verify_full(api)
    assert not report["ok"] and report["first_bad_seq"] == 1
    problems = report["problems"]
    assert isinstance(problems, list) and len(problems) == 101
    assert problems[-1] == "more problems follow; fix these and verify again"


async def test_an_audit_entry_is_never_appended_inside_a_write_transaction(api: Api) -> None:
    """On SQLite it would wait for the lock its own transaction holds (a hang found by the
    generated requests as an agent); anywhere, the log must not commit before the change."""
    svc = api.services
    event = auditing.event(Actor("someone", frozenset({"supervisor"})),
                           auditing.Origin("127.0.0.1", "req-1"), "search", "allowed")
    async with svc.database.write():
        with pytest.raises(RuntimeError):
            await auditing.record(svc, event)
    await auditing.record(svc, event)  # after it, as every handler does
