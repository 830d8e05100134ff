"""The audit log proves what it claims: filters show only what verifies, a removed
checkpoint is a failure, every decision is logged with its true outcome."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, update

from recordings_service import jobs
from storage.schema import audit_checkpoints, audit_entries
from tests.audio import wav_tone
from tests.conftest import Api
from tests.integration.helpers import blob_name


async def _verify(api: Api) -> dict[str, Any]:
    response = await api.client.get("/v1/audit/verify", headers=api.auth("auditor"))
    assert response.status == 200
    return await response.json()  # type: ignore[no-any-return]


async def _activity(api: Api) -> str:
    rec = await api.uploaded(wav_tone(0.2))
    for _ in range(3):
        assert (await api.audio(rec["id"], "training", "supervisor")).status == 200
    return str(rec["id"])


@pytest.mark.parametrize(("column", "forged"), [
    ("actor", "somebody-else"), ("recording_id", "rec_other"), ("action", "view_metadata"),
    ("outcome", "denied"), ("purpose", "quality_review")])
async def test_an_edited_filter_column_is_caught_and_never_shown(
        api: Api, column: str, forged: str) -> None:
    recording_id = await _activity(api)
    streams = await api.audit(action="stream", actor="supervisor")
    target = streams[1]["seq"]
    async with api.services.database.write() as conn:
        await conn.execute(update(audit_entries).where(audit_entries.c.seq == target)
                           .values({column: forged}))
    report = await _verify(api)
    assert report["ok"] is False and report["first_bad_seq"] == target
    # The edited row shows under neither its true nor its forged values.
    for query in ({column: forged}, {"recording_id": recording_id}, {"actor": "supervisor"}):
        assert target not in [e["seq"] for e in await api.audit(**query)], query


async def test_filters_page_through_rows_they_had_to_drop(api: Api) -> None:
    await _activity(api)
    async with api.services.database.write() as conn:
        await conn.execute(update(audit_entries).where(audit_entries.c.action == "stream")
                           .values(actor="hidden"))
    # Every forged row is dropped, yet the page still reaches the later true entries.
    response = await api.client.get("/v1/audit", params={"actor": "hidden", "limit": "1"},
                                    headers=api.auth("auditor"))
    body = await response.json()
    assert (body["items"], body["next_cursor"]) == ([], None)


async def test_deleting_every_checkpoint_fails_verification_once_entries_are_old(
        api: Api) -> None:
    await _activity(api)
    await jobs.checkpoint(api.services)
    async with api.services.database.write() as conn:
        await conn.execute(delete(audit_checkpoints))
    api.services.config.checkpoint_path.write_text("")
    api.clock.advance(seconds=api.services.config.stale_after_seconds + 1)
    report = await _verify(api)
    assert report["ok"] is False
    assert any("no signed checkpoint covers it" in p for p in report["problems"])


async def test_the_log_growing_past_the_size_trigger_gets_a_checkpoint(api: Api) -> None:
    api.services.config = api.services.config.with_overrides(checkpoint_every_entries=3)
    await jobs.checkpoint(api.services)
    assert await jobs.checkpoint_if_due(api.services) is None
    await _activity(api)  # an upload and 3 streams: 4 entries, past 3
    made = await jobs.checkpoint_if_due(api.services)
    assert made is not None and made.size == 4
    assert await jobs.checkpoint_if_due(api.services) is None


async def test_an_entry_no_checkpoint_covers_gets_one_within_the_max_delay(api: Api) -> None:
    # Only the newest, uncovered entries could be rewritten (hashes recomputed) unnoticed:
    # their age is bounded too, not only their number.
    api.services.config = api.services.config.with_overrides(checkpoint_max_delay_seconds=10)
    await jobs.checkpoint(api.services)
    assert await jobs.checkpoint_if_due(api.services) is None  # nothing uncovered
    await _activity(api)
    size = (await jobs.checkpoint(api.services)).size
    await api.uploaded(wav_tone(0.2, frequency=530), call_id="late")  # one more entry
    api.clock.advance(seconds=9.5)
    assert await jobs.checkpoint_if_due(api.services) is None
    api.clock.advance(seconds=0.5)
    made = await jobs.checkpoint_if_due(api.services)
    assert made is not None and made.size == size + 1
    assert await jobs.checkpoint_if_due(api.services) is None


async def test_a_revoked_callers_playback_link_is_refused_and_logged(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.2))
    status, link = await api.call("POST", f"/v1/recordings/{rec['id']}/playback-links",
                                  {"purpose": "training"}, role="supervisor")
    assert status == 201
    from storage import catalog

    async with api.services.database.write() as conn:
        assert await catalog.revoke_token(conn, "supervisor", api.clock())
    response = await api.client.get(link["url"])
    assert response.status == 403
    assert (await response.json())["reason"] == "link_revoked"
    entry = (await api.audit(recording_id=rec["id"], outcome="denied"))[-1]
    assert (entry["actor"], entry["reason"], entry["action"]) == (
        "supervisor", "link_revoked", "stream")


async def test_an_allowed_access_that_then_fails_is_logged_as_an_error(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.5))
    await api.services.blobs.delete(await blob_name(api.services, rec["id"]))
    response = await api.audio(rec["id"], "training", "supervisor")
    assert response.status == 500
    entries = await api.audit(recording_id=rec["id"], action="stream")
    assert [e["outcome"] for e in entries] == ["allowed", "error"]
    assert entries[-1]["reason"] == "BlobNotFoundError"
