"""The spool uploader: a finished recording lands in the service once, the plaintext leaves
the spool only after the service has it, and nothing still being written is sent."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from recordings_service.uploader.names import compile_pattern
from recordings_service.uploader.watch import Settings, run
from tests.audio import wav_tone
from tests.conftest import Api
from tests.integration.helpers import free_port

# One stack is enough: the uploader is a client of the same upload the suites run on both.
pytestmark = pytest.mark.parametrize("config", ["sqlite"], indirect=True)

META = {"started_at": "2026-11-24T09:00:00Z", "purposes": ["training"], "agent_id": "A-7"}


def settings(api: Api, spool: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "directory": spool, "url": str(api.client.make_url("/")), "purposes": ["training"],
        "token": api.tokens["ingest"], "stable_seconds": 2.0,
        "metadata_grace_seconds": 30.0, "backoff_first": 0.05, "backoff_max": 0.2}
    return Settings(**(values | overrides))


def finished(path: Path, audio: bytes, metadata: dict[str, Any] | None = None,
             age: float = 10.0) -> Path:
    """A recording the recorder closed ``age`` seconds ago, with its sidecar if given."""
    path.write_bytes(audio)
    if metadata is not None:
        path.with_suffix(".json").write_text(json.dumps(metadata))
    past = time.time() - age
    for item in (path, path.with_suffix(".json")):
        if item.exists():
            os.utime(item, (past, past))
    return path


async def stored(api: Api, call_id: str) -> list[dict[str, Any]]:
    status, body = await api.call("GET", f"/v1/recordings?call_id={call_id}")
    assert status == 200
    return body["items"]  # type: ignore[no-any-return]


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    directory = tmp_path / "spool"
    directory.mkdir()
    return directory


async def test_a_recording_with_a_sidecar_lands_once_and_leaves_the_spool(
        api: Api, spool: Path) -> None:
    audio = wav_tone(2)
    finished(spool / "call-1.wav", audio, {**META, "call_id": "pbx-1", "customer_id": "c-9"})
    assert await run(settings(api, spool), once=True) == 1
    assert os.listdir(spool) == []
    [rec] = await stored(api, "pbx-1")
    assert (rec["customer_id"], rec["agent_id"], rec["sha256"]) == (
        "c-9", "A-7", hashlib.sha256(audio).hexdigest())
    assert rec["duration_seconds"] == pytest.approx(2.0)
    # Nothing left to do the next time round.
    assert await run(settings(api, spool), once=True) == 0


async def test_metadata_from_the_file_name_and_default_purposes(api: Api, spool: Path) -> None:
    finished(spool / "1764000000.42-20261124-091500.wav", wav_tone(1))
    pattern = compile_pattern("{call_id}-{started_at}.wav")
    assert await run(settings(api, spool, pattern=pattern,
                              purposes=["quality_review", "security"]), once=True) == 1
    [rec] = await stored(api, "1764000000.42")
    assert rec["started_at"] == "2026-11-24T09:15:00Z"
    assert sorted(p["purpose"] for p in rec["purposes"]) == ["quality_review", "security"]


async def test_a_sidecar_adds_what_the_name_does_not_carry(api: Api, spool: Path) -> None:
    finished(spool / "1764000001.7-20261124-101500.wav", wav_tone(1),
             {"agent_id": "A-9", "queue": "billing"})
    pattern = compile_pattern("{call_id}-{started_at}.wav")
    assert await run(settings(api, spool, pattern=pattern), once=True) == 1
    [rec] = await stored(api, "1764000001.7")
    assert (rec["started_at"], rec["agent_id"], rec["queue"]) == (
        "2026-11-24T10:15:00Z", "A-9", "billing")


PBX_FORMATS = {  # as sox writes them, the way PBXs do
    "ulaw": ["-e", "u-law", "-b", "8"], "alaw": ["-e", "a-law", "-b", "8"],
    "gsm": ["-e", "gsm-full-rate"], "stereo": ["-c", "2", "-b", "16"]}


def pbx_files(spool: Path) -> list[str]:
    """sox-made WAVs as PBXs write them, each with a sidecar; their names."""
    if shutil.which("sox") is None:
        if os.environ.get("RECORDINGS_TEST_REQUIRE_TELEPHONY") == "1":
            pytest.fail("sox is required here (apt-get install sox)")
        pytest.skip("sox is not installed")
    for name, options in PBX_FORMATS.items():
        subprocess.run(["sox", "-n", "-r", "8000", *options, str(spool / f"{name}.wav"),
                        "synth", "3.5", "sine", "440"], check=True)
    # A recorder that streamed its file left the sizes at 0xFFFFFFFF.
    streamed = bytearray((spool / "ulaw.wav").read_bytes())
    streamed[4:8] = b"\xff\xff\xff\xff"
    data = streamed.index(b"data")
    streamed[data + 4:data + 8] = b"\xff\xff\xff\xff"
    (spool / "streamed.wav").write_bytes(bytes(streamed))
    names = sorted(p.stem for p in spool.iterdir())
    for name in names:
        finished(spool / f"{name}.wav", (spool / f"{name}.wav").read_bytes(),
                 {**META, "call_id": name})
    return names


async def test_audio_as_pbxs_write_it_lands_with_its_true_duration(
        api: Api, spool: Path) -> None:
    names = pbx_files(spool)
    assert await run(settings(api, spool), once=True) == 5
    for name in names:
        [rec] = await stored(api, name)
        assert rec["content_type"] == "audio/wav"
        assert rec["duration_seconds"] == pytest.approx(3.5, abs=0.03), name
        # Decoded, GSM 6.10 included: a tone on every channel is heard on every channel.
        assert rec["audio_check"] == "ok", name


async def test_a_file_still_being_written_is_never_sent(api: Api, spool: Path) -> None:
    path = spool / "live.wav"
    audio = wav_tone(1)
    with path.open("wb") as recorder:
        recorder.write(audio[:1000])
        recorder.flush()
        past = time.time() - 60
        os.utime(path, (past, past))  # even when its time says it is old
        path.with_suffix(".json").write_text(json.dumps({**META, "call_id": "live"}))
        os.utime(path.with_suffix(".json"), (past, past))
        assert await run(settings(api, spool), once=True) == 0  # open for writing
        recorder.write(audio[1000:])
    assert await run(settings(api, spool), once=True) == 0  # just changed
    finished(path, audio, {**META, "call_id": "live"})
    assert await run(settings(api, spool), once=True) == 1
    [rec] = await stored(api, "live")
    assert rec["size_bytes"] == len(audio)


async def test_a_permanent_refusal_sets_the_file_aside_with_the_reason(
        api: Api, spool: Path) -> None:
    finished(spool / "bad.wav", wav_tone(1), {**META, "call_id": "bad",
                                              "purposes": ["gossip"]})
    finished(spool / "nameless.wav", wav_tone(1, frequency=300))
    (spool / "broken.json").write_text("{not json")
    finished(spool / "broken.wav", wav_tone(1, frequency=350))
    assert await run(settings(api, spool, metadata_grace_seconds=0), once=True) == 0
    failed = spool / "failed"
    assert sorted(os.listdir(spool)) == ["failed"]
    assert sorted(os.listdir(failed)) == sorted([
        "bad.wav", "bad.json", "bad.wav.reason.json", "nameless.wav",
        "nameless.wav.reason.json", "broken.wav", "broken.json", "broken.wav.reason.json"])
    reasons = {name: json.loads((failed / f"{name}.wav.reason.json").read_text())
               for name in ("bad", "nameless", "broken")}
    assert (reasons["bad"]["status"], reasons["bad"]["reason"]) == (400, "unknown_purpose")
    assert reasons["nameless"]["reason"] == "no_metadata"
    assert reasons["broken"]["reason"] == "invalid_sidecar"
    assert await stored(api, "bad") == []


async def test_a_retry_after_success_changes_nothing_and_other_audio_is_refused(
        api: Api, spool: Path) -> None:
    audio = wav_tone(1)
    await api.uploaded(audio, call_id="again", **{k: v for k, v in META.items()
                                                  if k != "purposes"})
    # The uploader was killed after the service stored it, before the file was removed.
    finished(spool / "again.wav", audio, {**META, "call_id": "again"})
    finished(spool / "clash.wav", wav_tone(1, frequency=500), {**META, "call_id": "again"})
    assert await run(settings(api, spool), once=True) == 1
    assert len(await stored(api, "again")) == 1
    reason = json.loads((spool / "failed" / "clash.wav.reason.json").read_text())
    assert (reason["status"], reason["reason"]) == (409, "duplicate_call_id")


async def test_delivered_files_may_be_kept_elsewhere(api: Api, spool: Path,
                                                     tmp_path: Path) -> None:
    keep = tmp_path / "sent"
    keep.mkdir()
    finished(spool / "k.wav", wav_tone(1), {**META, "call_id": "k"})
    assert await run(settings(api, spool, keep=keep), once=True) == 1
    assert sorted(os.listdir(keep)) == ["k.json", "k.wav"] and os.listdir(spool) == []


async def test_an_unreachable_service_is_retried_and_the_logs_name_no_call(
        api: Api, spool: Path, caplog: pytest.LogCaptureFixture) -> None:
    finished(spool / "+358401234567-pbx-77.wav", wav_tone(1), {**META, "call_id": "pbx-77"})
    down = settings(api, spool, url=f"http://127.0.0.1:{free_port()}")
    with caplog.at_level(logging.INFO, logger="recordings_service.uploader"):
        assert await run(down, once=True) == 0
        assert (spool / "+358401234567-pbx-77.wav").exists()
        assert await run(settings(api, spool), once=True) == 1
    events = [(r.getMessage(), getattr(r, "reason", None)) for r in caplog.records]
    assert ("will retry", "ClientConnectorError") in events
    assert ("delivered", None) in events
    logged = " ".join(str(vars(r)) for r in caplog.records)
    assert "pbx-77" not in logged and "358401234567" not in logged
