"""At upload the service commits to the audio a redaction may later rewrite: the root of
its salted pieces is in the upload's audit entry, and it is exactly what anyone recomputes
from the audio and the salts; the salts' key goes when the data key goes."""

from __future__ import annotations

from recordings_service import commitment
from storage import catalog
from storage.merkle import frontier_append, frontier_root
from tests.audio import fixture, wav_tone
from tests.conftest import Api


async def test_the_upload_entry_holds_the_root_anyone_can_recompute(api: Api) -> None:
    audio = wav_tone(2.5)
    rec = await api.uploaded(audio, call_id="c-committed")
    [entry] = await api.audit(action="upload", recording_id=rec["id"])
    shown = entry["detail"]["commitment"]
    assert (shown["chunks"], shown["audio_offset"], shown["chunk_bytes"],
            shown["chunk_seconds"]) == (4, 44, 16000, 1)

    async with api.services.database.read() as conn:
        stored = await catalog.get_recording(conn, rec["id"])
        row = await catalog.commitment_of(conn, rec["id"])
    assert stored is not None and stored.wrapped_dek is not None and row is not None
    assert row["root"] == shown["root"]
    dek = await api.services.keyring.unwrap_fresh(stored.wrapped_dek, stored.key_version or 0,
                                                  rec["id"])
    key = commitment.open_salt_key(dek, rec["id"], row["sealed_salt_key"])
    frontier: list[bytes] = []
    for index, piece in enumerate(commitment.pieces(audio, 44, 16000)):
        leaf = commitment.chunk_leaf(index, commitment.chunk_salt(key, index), piece)
        frontier = frontier_append(frontier, index, leaf)
    assert frontier_root(frontier).hex() == shown["root"]


async def test_formats_a_redaction_cannot_rewrite_are_not_committed(api: Api) -> None:
    rec = await api.uploaded(fixture("tone.mp3"), call_id="c-mp3")
    [entry] = await api.audit(action="upload", recording_id=rec["id"])
    assert "commitment" not in entry["detail"]
    async with api.services.database.read() as conn:
        assert await catalog.commitment_of(conn, rec["id"]) is None


async def test_the_salts_key_goes_with_the_data_key(api: Api) -> None:
    rec = await api.uploaded(wav_tone(1.0), call_id="c-erased")
    status, _ = await api.call("DELETE", f"/v1/recordings/{rec['id']}",
                               {"reason": "data subject request"})
    assert status == 200
    async with api.services.database.read() as conn:
        assert await catalog.commitment_of(conn, rec["id"]) is None
    # The root stays where it was committed: in the signed log.
    [entry] = await api.audit(action="upload", recording_id=rec["id"])
    assert len(entry["detail"]["commitment"]["root"]) == 64
