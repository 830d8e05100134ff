"""The erasure ledger: every purge and erasure, durable beside the catalog, no personal
data, written before the tombstone commits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recordings_service import retention
from recordings_service.receipts import verify_receipt
from storage import erasure_ledger
from tests.audio import wav_tone
from tests.conftest import Api


def _ledger(api: Api) -> list[dict[str, Any]]:
    return list(erasure_ledger.read(api.services.config.erasure_ledger_path))


async def test_purges_and_erasures_are_in_the_ledger_with_their_receipts(api: Api) -> None:
    erased = await api.uploaded(wav_tone(0.2), call_id="c-erased", customer_id="C-LEDGER",
                                phone_number="+358409990000")
    due = await api.uploaded(wav_tone(0.3), call_id="c-due", purposes=["training"])
    status, _ = await api.call("DELETE", f"/v1/recordings/{erased['id']}",
                               {"reason": "data subject request"})
    assert status == 200
    api.clock.advance(days=200)  # training (6 months) has ended
    status, run = await api.call("POST", "/v1/purge-runs", {"dry_run": False})
    assert status == 201 and run["purged"] == [due["id"]]

    ledger = _ledger(api)
    assert [(e["recording_id"], e["action"]) for e in ledger] == [
        (erased["id"], "erasure"), (due["id"], "purge")]
    public = api.services.signing_key.public_key()
    for entry in ledger:
        assert verify_receipt(entry["deletion_receipt"], public)
        assert entry["blob_name"]
    text = api.services.config.erasure_ledger_path.read_text()
    for personal in ("C-LEDGER", "+358409990000", "c-erased", "c-due"):
        assert personal not in text
    assert api.services.config.erasure_ledger_path.stat().st_mode & 0o777 == 0o600


async def test_no_tombstone_commits_without_its_ledger_line(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = await api.uploaded(wav_tone(0.2))

    def disk_gone(*args: Any) -> None:
        raise OSError("the ledger cannot be written")

    with monkeypatch.context() as patch:
        patch.setattr(erasure_ledger, "append", disk_gone)
        status, _ = await api.call("DELETE", f"/v1/recordings/{rec['id']}", {"reason": "r"})
        assert status == 500
    assert _ledger(api) == []
    status, body = await api.call("GET", f"/v1/recordings/{rec['id']}")
    assert body["state"] != "purged"  # key destroyed, blob gone, tombstone not committed
    # The next retention run finishes it, ledger line first.
    await retention.run_purge(api.services, retention.RETENTION_ACTOR,
                              retention.SYSTEM_ORIGIN, dry_run=False)
    assert [e["recording_id"] for e in _ledger(api)] == [rec["id"]]
    status, body = await api.call("GET", f"/v1/recordings/{rec['id']}")
    assert body["state"] == "purged"


def test_replicas_ledgers_meet_in_one_destination_copy_without_repeats(
        tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "erasure-ledger.jsonl", tmp_path / "b" / "erasure-ledger.jsonl"
    copy = tmp_path / "dest" / "erasure-ledger.jsonl"
    for path in (a, b):
        path.parent.mkdir()
    erasure_ledger.append(a, [{"recording_id": "rec_a1"}])
    erasure_ledger.mirror(a, copy)
    erasure_ledger.append(b, [{"recording_id": "rec_b1"}])
    erasure_ledger.mirror(b, copy)
    erasure_ledger.append(a, [{"recording_id": "rec_a2"}])
    erasure_ledger.mirror(a, copy)
    erasure_ledger.mirror(a, copy)  # nothing new: nothing appended
    # A torn last line (a crash mid-append) is not copied until it is whole.
    with b.open("ab") as f:
        f.write(b'{"recording_id":"rec_b')
    erasure_ledger.mirror(b, copy)
    assert [e["recording_id"] for e in erasure_ledger.read(copy)] == [
        "rec_a1", "rec_b1", "rec_a2"]
