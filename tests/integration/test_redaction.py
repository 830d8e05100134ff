"""Redaction through HTTP: a span of a stored call is replaced for good, under a new data
key with the old one destroyed, a signed receipt, and a proof that anyone checks offline
with `recordings-service verify-redaction` (which fails naming what is wrong)."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from recordings_service import jobs, receipts, redaction
from storage.audit_log import canonical_json
from storage.merkle import leaf_hash
from storage.schema import recordings
from storage.signing import load_public_key
from tests import catalog_seed as seed
from tests.audio import fixture, riff_wav, wav_tone
from tests.conftest import Api
from tests.integration.helpers import run_cli, stored_blobs

HEADER = 44  # the test WAVs' audio starts here
RATE = 8000


async def redact(api: Api, rec: dict[str, Any], spans: list[dict[str, Any]],
                 reason: str = "pci", fill: str = "silence",
                 role: str = "compliance") -> tuple[int, Any]:
    return await api.call("POST", f"/v1/recordings/{rec['id']}/redactions",
                          {"spans": spans, "reason": reason, "fill": fill}, role=role)


async def audio_of(api: Api, rec: dict[str, Any]) -> bytes:
    response = await api.audio(rec["id"], "legal_protection", "compliance")
    assert response.status == 200, await response.text()
    return await response.read()


def pcm16(samples: list[int], channels: int = 1) -> bytes:
    return riff_wav(struct.pack(f"<{len(samples)}h", *samples), channels=channels,
                    byte_rate=RATE * 2 * channels, block_align=2 * channels)


async def public_key_pem(api: Api) -> bytes:
    return await (await api.client.get("/v1/audit/public-key",
                                       headers=api.auth("auditor"))).read()


async def test_a_span_is_silenced_for_good_and_nothing_else_changes(api: Api) -> None:
    original = wav_tone(4.0)
    rec = await api.uploaded(original, call_id="c-card")
    blobs_before = await stored_blobs(api.services)
    status, done = await redact(api, rec, [{"start_ms": 1000, "end_ms": 2000}])
    assert status == 201, done
    after = await audio_of(api, rec)
    span = slice(HEADER + RATE * 2, HEADER + 2 * RATE * 2)
    assert len(after) == len(original) and after[:span.start] == original[:span.start]
    assert after[span] == bytes(RATE * 2) and after[span.stop:] == original[span.stop:]
    # The receipt: signed, naming the new audio, the spans, the root committed at upload.
    key = load_public_key(await public_key_pem(api))
    assert receipts.verify_receipt(done["receipt"], key)
    body = done["receipt"]["receipt"]
    assert body["audio_sha256"] == hashlib.sha256(after).hexdigest()
    assert body["previous_sha256"] == hashlib.sha256(original).hexdigest()
    assert body["spans"] == [{"start_ms": 1000, "end_ms": 2000, "channel": None}]
    [upload] = await api.audit(action="upload", recording_id=rec["id"])
    assert body["original_root"] == upload["detail"]["commitment"]["root"]
    [entry] = await api.audit(action="redaction", recording_id=rec["id"])
    assert entry["seq"] == body["audit_seq"] and entry["actor"] == "compliance"
    # Crypto-shredded: a new blob under a new key; the old blob and old key are nowhere.
    blobs_after = await stored_blobs(api.services)
    assert len(blobs_after) == 1 and set(blobs_after).isdisjoint(blobs_before)
    _, shown = await api.call("GET", f"/v1/recordings/{rec['id']}")
    assert shown["duration_seconds"] == rec["duration_seconds"]
    assert shown["sha256"] == body["audio_sha256"]
    status, listed = await api.call("GET", f"/v1/recordings/{rec['id']}/redactions",
                                    role="auditor")
    assert status == 200 and [r["id"] for r in listed["items"]] == [done["id"]]


async def test_the_old_data_key_is_in_no_row_and_the_old_audio_in_no_blob(api: Api) -> None:
    original = wav_tone(2.0, frequency=700)
    rec = await api.uploaded(original, call_id="c-shred")
    async with api.services.database.read() as conn:
        old_key = (await conn.execute(select(recordings.c.wrapped_dek).where(
            recordings.c.id == rec["id"]))).scalar()
    status, _ = await redact(api, rec, [{"start_ms": 0, "end_ms": 500}], reason="pii")
    assert status == 201
    catalog_file = api.services.config.data_dir / "catalog.sqlite3"
    if catalog_file.exists():
        for path in api.services.config.data_dir.glob("catalog.sqlite3*"):
            assert old_key not in path.read_bytes(), path.name
    async with api.services.database.read() as conn:
        keys = (await conn.execute(select(recordings.c.wrapped_dek))).scalars().all()
    assert old_key not in keys
    # No stored blob decrypts to the original: the one blob left is the redacted audio.
    assert len(await stored_blobs(api.services)) == 1
    assert (await audio_of(api, rec))[HEADER + 4000 * 2:] == original[HEADER + 4000 * 2:]


async def test_a_tone_fills_the_span_and_a_stereo_leg_is_redacted_alone(api: Api) -> None:
    rec = await api.uploaded(pcm16([1000] * RATE), call_id="c-tone")
    status, _ = await redact(api, rec, [{"start_ms": 250, "end_ms": 500}], fill="tone")
    assert status == 201
    after = await audio_of(api, rec)
    samples = struct.unpack(f"<{RATE}h", after[HEADER:])
    beep = samples[2000:4000]
    assert max(beep) == pytest.approx(3277, abs=2) and min(beep) == pytest.approx(-3277, abs=2)
    assert samples[:2000] == (1000,) * 2000 and samples[4000:] == (1000,) * 4000
    # A 1 kHz tone at 8 kHz: a period of eight samples.
    assert beep[0:8] == beep[8:16]

    stereo = await api.uploaded(pcm16([100, 200] * RATE, channels=2), call_id="c-stereo")
    status, _ = await redact(api, stereo, [{"start_ms": 0, "end_ms": 1000, "channel": 0}])
    assert status == 201
    both = struct.unpack(f"<{2 * RATE}h", (await audio_of(api, stereo))[HEADER:])
    assert both[0::2] == (0,) * RATE and both[1::2] == (200,) * RATE


@pytest.mark.parametrize(("tag", "silent"), [(7, 0xFF), (6, 0xD5)])
async def test_mu_law_and_a_law_are_silenced_with_their_own_silence(
        api: Api, tag: int, silent: int) -> None:
    audio = riff_wav(bytes([0x12]) * RATE, format_tag=tag, byte_rate=RATE, block_align=1,
                     bits=8)
    rec = await api.uploaded(audio, call_id=f"c-g711-{tag}")
    status, _ = await redact(api, rec, [{"start_ms": 100, "end_ms": 200}])
    assert status == 201
    after = await audio_of(api, rec)
    assert after[HEADER + 800:HEADER + 1600] == bytes([silent]) * 800
    assert after[HEADER:HEADER + 800] == bytes([0x12]) * 800


async def test_span_edges_overlaps_and_the_end(api: Api) -> None:
    rec = await api.uploaded(pcm16([500] * RATE), call_id="c-edges")  # one second
    # A millisecond is 8 frames; a span covers every frame any part of it reaches.
    status, done = await redact(api, rec, [{"start_ms": 0, "end_ms": 1},
                                           {"start_ms": 999, "end_ms": 1000},
                                           {"start_ms": 500, "end_ms": 600},
                                           {"start_ms": 550, "end_ms": 700}])
    assert status == 201
    assert done["spans"] == [{"start_ms": 0, "end_ms": 1, "channel": None},
                             {"start_ms": 500, "end_ms": 700, "channel": None},
                             {"start_ms": 999, "end_ms": 1000, "channel": None}]
    samples = struct.unpack(f"<{RATE}h", (await audio_of(api, rec))[HEADER:])
    assert samples[:8] == (0,) * 8 and samples[8] == 500
    assert samples[3999] == 500 and samples[4000:5600] == (0,) * 1600 and samples[5600] == 500
    assert samples[7991] == 500 and samples[7992:] == (0,) * 8
    for bad, reason in (([{"start_ms": 900, "end_ms": 1001}], "invalid_redaction"),
                        ([{"start_ms": 5, "end_ms": 5}], "invalid_redaction"),
                        ([{"start_ms": 0, "end_ms": 10, "channel": 1}], "invalid_redaction"),
                        ([], "invalid_redaction")):
        status, problem = await redact(api, rec, bad)
        assert (status, problem["reason"]) == (400, reason), bad
    status, problem = await api.call("POST", f"/v1/recordings/{rec['id']}/redactions",
                                     {"spans": [{"start_ms": 0, "end_ms": 1}],
                                      "reason": "because"})
    assert (status, problem["reason"]) == (400, "invalid_redaction")


async def test_formats_it_cannot_rewrite_are_refused(api: Api) -> None:
    rec = await api.uploaded(fixture("tone.mp3"), call_id="c-mp3")
    status, problem = await redact(api, rec, [{"start_ms": 0, "end_ms": 100}])
    assert (status, problem["reason"]) == (422, "redaction_unsupported_format")
    status, _ = await redact(api, {"id": "rec_nothing"}, [{"start_ms": 0, "end_ms": 1}])
    assert status == 404


async def test_under_a_legal_hold_only_card_data_is_redacted_and_the_receipt_says_so(
        api: Api) -> None:
    rec = await api.uploaded(wav_tone(2.0), call_id="c-held")
    status, _ = await api.call("POST", "/v1/legal-holds", {
        "case_reference": "LIT-7", "reason": "a claim", "recording_ids": [rec["id"]]})
    assert status == 201
    status, problem = await redact(api, rec, [{"start_ms": 0, "end_ms": 100}], reason="pii")
    assert (status, problem["reason"]) == (409, "legal_hold")
    status, done = await redact(api, rec, [{"start_ms": 0, "end_ms": 100}], reason="pci")
    assert status == 201
    assert done["under_legal_hold"] is True
    assert done["receipt"]["receipt"]["legal_holds"] == ["LIT-7"]
    entries = await api.audit(action="redaction", recording_id=rec["id"])
    assert [(e["outcome"], e["detail"].get("under_legal_hold")) for e in entries] == [
        ("denied", None), ("allowed", True)]


async def test_a_payment_application_sends_its_spans_with_the_ingest_role(api: Api) -> None:
    rec = await api.uploaded(wav_tone(1.0), call_id="c-pay")
    status, done = await redact(api, rec, [{"start_ms": 100, "end_ms": 300}], role="ingest")
    assert status == 201 and done["actor"] == "ingest"
    status, _ = await redact(api, rec, [{"start_ms": 100, "end_ms": 300}], role="supervisor")
    assert status == 403


async def test_playback_links_made_before_stop_working(api: Api) -> None:
    rec = await api.uploaded(wav_tone(1.0), call_id="c-link")
    status, link = await api.call("POST", f"/v1/recordings/{rec['id']}/playback-links",
                                  {"purpose": "legal_protection"})
    assert status in (200, 201)
    url = link["url"]
    assert (await api.client.get(url)).status == 200
    status, _ = await redact(api, rec, [{"start_ms": 0, "end_ms": 100}])
    assert status == 201
    stale = await api.client.get(url)
    assert stale.status == 410 and (await stale.json())["reason"] == "link_superseded"
    _, fresh = await api.call("POST", f"/v1/recordings/{rec['id']}/playback-links",
                              {"purpose": "legal_protection"})
    assert (await api.client.get(fresh["url"])).status == 200


class Crash(Exception):
    pass


@pytest.mark.parametrize("step", ["rewrite", "swap", "old_blob"])
async def test_killed_at_any_step_one_recording_is_readable_and_the_sweep_tidies(
        api: Api, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    original = wav_tone(2.0)
    rec = await api.uploaded(original, call_id=f"c-crash-{step}")

    async def crash(*_args: object, **_kwargs: object) -> None:
        raise Crash(step)

    if step == "rewrite":  # the new blob is being written
        monkeypatch.setattr(redaction.Filler, "finish", lambda _self: (_ for _ in ()).throw(
            Crash(step)))
    elif step == "swap":  # the new blob is whole, the catalog not yet changed
        monkeypatch.setattr(redaction, "_swap", crash)
    else:  # the catalog names the new blob, the old one is not yet deleted
        monkeypatch.setattr(redaction, "_delete_old_blob", crash)
    with pytest.raises(Crash):
        await redaction.redact(api.services, redaction_actor(), redaction_origin(),
                               rec["id"], {"spans": [{"start_ms": 0, "end_ms": 1000}],
                                           "reason": "pci"})
    monkeypatch.undo()
    served = await audio_of(api, rec)
    if step == "old_blob":
        assert served[HEADER:HEADER + RATE * 2] == bytes(RATE * 2)  # the redacted one
    else:
        assert served == original  # the old one, whole
    # The blob no row names (the new one, or the old one whose key is gone) is an orphan.
    api.clock.now = datetime.now(UTC) + timedelta(minutes=1)
    await jobs.sweep_orphans(api.services, timedelta(0))
    assert len(await stored_blobs(api.services)) == 1
    assert (await audio_of(api, rec)) == served


def redaction_actor() -> Any:
    from recordings_service.auth import Actor
    return Actor("compliance", frozenset({"compliance"}))


def redaction_origin() -> Any:
    from recordings_service.auditing import SYSTEM_ORIGIN
    return SYSTEM_ORIGIN


async def _files_for_verification(api: Api, tmp_path: Path, rec: dict[str, Any],
                                  done: dict[str, Any]) -> dict[str, Path]:
    status, proof = await api.call(
        "GET", f"/v1/recordings/{rec['id']}/redactions/{done['id']}/proof", role="auditor")
    assert status == 200, proof
    files = {"receipt": tmp_path / "receipt.json", "proof": tmp_path / "proof.json",
             "audio": tmp_path / "call.wav", "public-key": tmp_path / "key.pem"}
    files["receipt"].write_text(json.dumps(done["receipt"]))
    files["proof"].write_text(json.dumps(proof))
    files["audio"].write_bytes(await audio_of(api, rec))
    files["public-key"].write_bytes(await public_key_pem(api))
    return files


def verify(tmp_path: Path, files: dict[str, Path]) -> tuple[int, dict[str, Any]]:
    done = run_cli(tmp_path / "nowhere", "verify-redaction",
                   *[arg for name, path in files.items() for arg in (f"--{name}", str(path))])
    return done.returncode, json.loads(done.stdout)


async def test_the_proof_checks_offline_and_fails_naming_what_was_changed(
        api: Api, tmp_path: Path) -> None:
    rec = await api.uploaded(wav_tone(5.0), call_id="c-proof")
    status, done = await redact(api, rec, [{"start_ms": 1500, "end_ms": 2200}])
    assert status == 201
    files = await _files_for_verification(api, tmp_path, rec, done)
    assert verify(tmp_path, files) == (0, {"ok": True, "problems": []})

    # A byte changed outside the span, with a receipt and proof that would fit it.
    audio = bytearray(files["audio"].read_bytes())
    audio[HEADER + 4 * RATE * 2 + 10] ^= 0x40  # in the fifth second: piece 5
    tampered = tmp_path / "tampered.wav"
    tampered.write_bytes(bytes(audio))
    code, report = verify(tmp_path, {**files, "audio": tampered})
    assert code == 1 and any(p.startswith("audio sha256") for p in report["problems"])
    assert any(p.startswith("piece 5 (4 s to 5 s)") for p in report["problems"])

    # A substituted original root in the proof; then one in the receipt itself.
    proof = json.loads(files["proof"].read_text())
    other = tmp_path / "other-proof.json"
    other.write_text(json.dumps({**proof, "original_root": "00" * 32}))
    code, report = verify(tmp_path, {**files, "proof": other})
    assert code == 1 and report["problems"] == ["proof original_root: differs from the "
                                                "receipt's"]
    receipt = json.loads(files["receipt"].read_text())
    receipt["receipt"]["original_root"] = "00" * 32
    forged = tmp_path / "forged-receipt.json"
    forged.write_text(json.dumps(receipt))
    code, report = verify(tmp_path, {**files, "receipt": forged})
    assert code == 1 and report["problems"][0].startswith("receipt signature")

    # A tampered proof: a salt changed, or a piece outside the spans claimed as changed.
    salts = dict(proof["salts"])
    salts["1"] = "11" * 32
    other.write_text(json.dumps({**proof, "salts": salts}))
    code, report = verify(tmp_path, {**files, "proof": other})
    assert code == 1 and report["problems"] == [
        "piece 1 (0 s to 1 s) is not as committed at upload"]
    other.write_text(json.dumps({**proof, "changed_pieces": [*proof["changed_pieces"], 5]}))
    code, report = verify(tmp_path, {**files, "proof": other})
    assert code == 1 and report["problems"][0].startswith("proof: pieces [5] are given as "
                                                          "changed")
    leaves = list(proof["leaves"])
    leaves[2] = "22" * 32
    other.write_text(json.dumps({**proof, "leaves": leaves}))
    code, report = verify(tmp_path, {**files, "proof": other})
    assert code == 1 and report["problems"][0].startswith("original root")
    # An upload entry other than the one the log's chain holds.
    entry = {**proof["upload_entry"], "actor": "someone-else"}
    other.write_text(json.dumps({**proof, "upload_entry": entry}))
    code, report = verify(tmp_path, {**files, "proof": other})
    assert code == 1 and report["problems"] == [
        "upload entry: not the entry its hash in the log's chain names", NOT_INCLUDED]
    # Rewritten with its hash recomputed, as someone with the database could: the chain
    # check alone passes; the signed checkpoint does not hold it.
    content = {k: v for k, v in entry.items() if k not in ("prev_hash", "hash")}
    entry["hash"] = hashlib.sha256(bytes.fromhex(entry["prev_hash"]) + leaf_hash(
        canonical_json(content))).hexdigest()
    other.write_text(json.dumps({**proof, "upload_entry": entry}))
    code, report = verify(tmp_path, {**files, "proof": other})
    assert code == 1 and report["problems"] == [NOT_INCLUDED]
    # A checkpoint with another root, or a path with a node changed or missing.
    inclusion = proof["inclusion"]
    lines = inclusion["checkpoint"].split("\n")
    lines[2] = base64.b64encode(bytes(32)).decode()
    for changed, problem in (
            ({**inclusion, "checkpoint": "\n".join(lines)},
             "checkpoint: not signed by this key, or changed"),
            ({**inclusion, "path": ["33" * 32, *inclusion["path"][1:]]}, NOT_INCLUDED),
            ({**inclusion, "path": inclusion["path"][:-1]}, NOT_INCLUDED),
            ({**inclusion, "leaf_index": inclusion["leaf_index"] + 1},
             "upload entry inclusion: its leaf index is not the entry's seq"),
            ({**inclusion, "path": "not a list of hashes"}, "upload entry inclusion: malformed"),
            (None, "upload entry inclusion: not in the proof")):
        other.write_text(json.dumps({**proof, "inclusion": changed}))
        code, report = verify(tmp_path, {**files, "proof": other})
        assert code == 1 and problem in report["problems"], (changed, report)


NOT_INCLUDED = ("upload entry inclusion: the path does not lead from the entry to the "
                "signed checkpoint's root")


async def test_the_upload_entry_is_proven_in_the_signed_log_also_once_archived(
        api: Api, tmp_path: Path) -> None:
    # Entries before the upload and after it, a checkpoint between, so that the path has
    # siblings on both sides; then the old part of the log moves to the tiles.
    await seed.seed_audit(api.services.database, 300, api.clock())
    await jobs.checkpoint(api.services)
    rec = await api.uploaded(wav_tone(3.0), call_id="c-archived")
    await seed.seed_audit(api.services.database, 300, api.clock())
    await jobs.checkpoint(api.services)
    status, done = await redact(api, rec, [{"start_ms": 1000, "end_ms": 1500}])
    assert status == 201
    files = await _files_for_verification(api, tmp_path, rec, done)
    proof = json.loads(files["proof"].read_text())
    seq = proof["upload_entry"]["seq"]
    assert proof["inclusion"]["leaf_index"] == seq - 1
    assert seq < proof["inclusion"]["tree_size"] <= seq + 300 + 10
    assert verify(tmp_path, files) == (0, {"ok": True, "problems": []})

    api.clock.advance(days=30)
    await jobs.checkpoint(api.services)
    assert (await jobs.archive_audit(api.services, after_days=10))["moved"] >= seq
    files = await _files_for_verification(api, tmp_path, rec, done)
    assert json.loads(files["proof"].read_text())["inclusion"] == proof["inclusion"]
    assert verify(tmp_path, files) == (0, {"ok": True, "problems": []})


async def test_after_a_purge_the_redaction_stays_recorded_and_its_proof_is_gone(
        api: Api) -> None:
    rec = await api.uploaded(wav_tone(1.0), call_id="c-gone")
    _, done = await redact(api, rec, [{"start_ms": 0, "end_ms": 100}])
    status, _ = await api.call("DELETE", f"/v1/recordings/{rec['id']}",
                               {"reason": "data subject request"})
    assert status == 200
    status, listed = await api.call("GET", f"/v1/recordings/{rec['id']}/redactions",
                                    role="auditor")
    assert [r["id"] for r in listed["items"]] == [done["id"]]
    status, problem = await api.call(
        "GET", f"/v1/recordings/{rec['id']}/redactions/{done['id']}/proof", role="auditor")
    assert (status, problem["reason"]) == (410, "purged")
    status, problem = await redact(api, rec, [{"start_ms": 0, "end_ms": 100}])
    assert status == 410


async def test_a_chunk_after_the_audio_is_never_taken_for_audio(api: Api) -> None:
    trailer = b"LIST" + struct.pack("<I", 12) + b"INFOISFT\x04\x00\x00\x00sox\x00"
    audio = bytearray(pcm16([700] * RATE) + trailer)
    audio[4:8] = struct.pack("<I", len(audio) - 8)  # the RIFF size takes in the LIST
    rec = await api.uploaded(bytes(audio), call_id="c-trailer")
    status, problem = await redact(api, rec, [{"start_ms": 900, "end_ms": 1001}])
    assert (status, problem["reason"]) == (400, "invalid_redaction")  # past the samples
    status, _ = await redact(api, rec, [{"start_ms": 900, "end_ms": 1000}])
    assert status == 201
    after = await audio_of(api, rec)
    assert after.endswith(trailer) and len(after) == len(audio)
    assert after[HEADER + 7200 * 2:HEADER + RATE * 2] == bytes(800 * 2)


async def test_a_second_redaction_proves_everything_changed_since_upload(
        api: Api, tmp_path: Path) -> None:
    rec = await api.uploaded(wav_tone(6.0), call_id="c-twice")
    _, first = await redact(api, rec, [{"start_ms": 500, "end_ms": 900}])
    status, second = await redact(api, rec, [{"start_ms": 4200, "end_ms": 4300}],
                                  reason="pii", fill="tone")
    assert status == 201, second
    assert second["receipt"]["receipt"]["all_spans"] == [
        {"start_ms": 500, "end_ms": 900, "channel": None},
        {"start_ms": 4200, "end_ms": 4300, "channel": None}]
    assert second["receipt"]["receipt"]["original_root"] == \
        first["receipt"]["receipt"]["original_root"]
    files = await _files_for_verification(api, tmp_path, rec, second)
    assert verify(tmp_path, files) == (0, {"ok": True, "problems": []})
    proof = json.loads(files["proof"].read_text())
    assert proof["changed_pieces"] == [1, 5]
