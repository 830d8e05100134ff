"""From "call ended" to "encrypted in the service, plaintext gone", with real processes: a
SIP call recorded by baresip, the uploader as a PBX would run it, the service as `serve`.
The uploader and the service are killed and restarted the way real ones are."""

from __future__ import annotations

import asyncio
import calendar
import io
import json
import os
import shutil
import signal
import sys
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.audio import long_wav
from tests.integration.helpers import (
    free_port,
    new_service,
    run_cli,
    service_env,
    start_serve,
)
from tests.telephony import Recorder, recorder  # noqa: F401 (a fixture)

# dump-2026-11-26-07-27-53-dec.wav: baresip answers and writes what it heard (the
# caller's side, -dec) and what it said (-enc) for each call.
BARESIP_NAMES = ("--pattern", "dump-{started_at}-{leg}.wav",
                 "--leg-names", "dec=caller,enc=callee")


class Service:
    def __init__(self, tmp_path: Path, config_text: str = "",
                 roles: tuple[str, ...] = ("ingest", "supervisor")) -> None:
        self.data, self.config, self.tokens = new_service(tmp_path, config_text, *roles)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token_file = tmp_path / "ingest.token"
        self.token_file.write_text(self.tokens["ingest"] + "\n")
        self.token_file.chmod(0o600)
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await start_serve(self.data, self.config, self.port)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()

    async def recordings(self) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session, session.get(
                f"{self.url}/v1/recordings", params={"limit": "500"},
                headers={"Authorization": f"Bearer {self.tokens['supervisor']}"}) as r:
            assert r.status == 200
            return (await r.json())["items"]  # type: ignore[no-any-return]

    async def request(self, method: str, path: str, role: str, body: Any = None,
                      expect: int = 200, **query: str) -> Any:
        async with aiohttp.ClientSession() as session, session.request(
                method, f"{self.url}{path}", json=body, params=query,
                headers={"Authorization": f"Bearer {self.tokens[role]}"}) as r:
            assert r.status == expect, await r.text()
            return await r.json() if r.content_type.endswith("json") else await r.read()

    async def audio(self, recording_id: str) -> bytes:
        async with aiohttp.ClientSession() as session, session.get(
                f"{self.url}/v1/recordings/{recording_id}/audio",
                headers={"Authorization": f"Bearer {self.tokens['supervisor']}",
                         "Access-Purpose": "training"}) as r:
            assert r.status == 200
            return await r.read()


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    running = Service(tmp_path)
    yield running
    await running.stop()


class UploadWatch:
    """``recordings-service upload-watch`` as a PBX runs it, with its metrics port."""

    def __init__(self, service: Service, spool: Path, log: Path, *extra: str) -> None:
        self.args = [sys.executable, "-m", "recordings_service", "upload-watch", str(spool),
                     "--url", service.url, "--token-file", str(service.token_file),
                     "--purpose", "training", "--stable-seconds", "1", *extra]
        self.log = log
        self.process: asyncio.subprocess.Process | None = None
        self.metrics_port = 0

    async def start(self) -> None:
        self.metrics_port = free_port()
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *self.args, "--metrics-port", str(self.metrics_port), env=service_env(),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)

    async def metric(self, name: str) -> float:
        try:
            async with aiohttp.ClientSession() as session, session.get(
                    f"http://127.0.0.1:{self.metrics_port}/metrics") as r:
                text = await r.text()
        except aiohttp.ClientError:
            return 0.0
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and not line.startswith("#"))

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 20)


async def until(check: Callable[[], bool | Awaitable[bool]], seconds: float,
                what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await _value(check()):
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.1)


async def _value(result: bool | Awaitable[bool]) -> bool:
    return result if isinstance(result, bool) else await result


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / w.getframerate()


def spool_is_empty(spool: Path) -> Callable[[], bool]:
    return lambda: not [p for p in spool.iterdir() if p.suffix == ".wav"]


async def test_a_real_sip_call_lands_encrypted_with_its_duration_and_leaves_the_pbx(
        recorder: tuple[Recorder, Path], service: Service,  # noqa: F811
        tmp_path: Path) -> None:
    sip, spool = recorder
    await service.start()
    uploader = UploadWatch(service, spool, tmp_path / "uploader.log", *BARESIP_NAMES)
    await uploader.start()
    try:
        summary = await sip.call()
        assert "Successful call" in summary
        await until(spool_is_empty(spool), 60, "both call legs left the spool")
        stored = await service.recordings()
        # One call, two legs: what the caller sent, and what the recorder answered.
        assert len(stored) == 2 and len({r["call_id"] for r in stored}) == 1
        assert sorted(r["leg"] for r in stored) == ["callee", "caller"]
        for rec in stored:
            audio = await service.audio(rec["id"])
            assert len(audio) == rec["size_bytes"]
            assert rec["duration_seconds"] == pytest.approx(wav_seconds(audio), abs=0.01)
            assert rec["started_at"].startswith(time.strftime("%Y-%m-%d", time.gmtime()))
        received = next(r for r in stored if r["leg"] == "caller")
        # The capture sipp plays is about seven seconds of speech: all of it arrived, not
        # the part written when the uploader first saw the file.
        assert 5.0 < received["duration_seconds"] < 12.0
        assert await uploader.metric("recordings_uploader_uploaded_total") == 2
        assert os.listdir(spool) == []
        # The service holds them encrypted: no run of the audio is on its disk.
        blobs = b"".join(p.read_bytes() for p in (service.data / "blobs").rglob("*")
                         if p.is_file())
        assert audio[1000:1064] not in blobs
    finally:
        await uploader.stop()


async def test_the_service_down_when_the_call_ends_is_retried_until_it_is_back(
        recorder: tuple[Recorder, Path], service: Service,  # noqa: F811
        tmp_path: Path) -> None:
    sip, spool = recorder
    uploader = UploadWatch(service, spool, tmp_path / "uploader.log", *BARESIP_NAMES)
    await uploader.start()
    try:
        await sip.call()

        async def retried() -> bool:
            return await uploader.metric("recordings_uploader_retried_total") >= 2
        await until(retried, 60, "the uploader retried the unreachable service")
        assert len([p for p in spool.iterdir() if p.suffix == ".wav"]) == 2
        await service.start()
        await until(spool_is_empty(spool), 120, "the uploader delivered once it was back")
        assert len(await service.recordings()) == 2
    finally:
        await uploader.stop()


def _cut(path: Path, share: float) -> None:
    """Keeps the first ``share`` of a WAV's audio, as a recorder that stopped early."""
    with wave.open(str(path)) as w:
        params, frames = w.getparams(), w.readframes(w.getnframes())
    keep = int(len(frames) * share) // params.sampwidth * params.sampwidth
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(frames[:keep])


def _calls_of(spool: Path) -> dict[str, dict[str, Path]]:
    """Per call id (the file name without its leg): each leg's file."""
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(spool.glob("dump-*.wav")):
        call_id, leg = path.stem.rsplit("-", 1)
        found.setdefault(call_id, {})[leg] = path
    return found


def _record(call_id: str, started: str, seconds: float) -> dict[str, Any]:
    """The PBX's call record: answered at once, talked for ``seconds``."""
    start = time.strptime(started, "%Y-%m-%d-%H-%M-%S")
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", start)
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(calendar.timegm(start) + seconds))
    return {"call_id": call_id, "source": "sip", "started_at": at, "answered_at": at,
            "ended_at": end}


async def test_coverage_of_real_calls_finds_the_missing_the_partial_and_the_short(
        recorder: tuple[Recorder, Path], tmp_path: Path) -> None:  # noqa: F811
    sip, spool = recorder
    service = Service(tmp_path, "[coverage]\ngrace_minutes = 0\n")
    await service.start()
    try:
        for _ in range(3):
            assert "Successful call" in await sip.call()
            await asyncio.sleep(1.1)  # each call's files are named by the second it began
        made = _calls_of(spool)
        assert len(made) == 3 and all(set(legs) == {"dec", "enc"} for legs in made.values())
        whole, one_sided, cut = sorted(made)
        # Talked as long as both legs of a whole call hold (they differ by a few frames).
        seconds = min(wav_seconds(p.read_bytes()) for p in made[whole].values())
        # The PBX reports a fourth call whose recording never reached the spool.
        late_id = "dump-" + time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(time.time() - 3600))
        held_back = tmp_path / "held-back"
        held_back.mkdir()
        for leg, path in made[whole].items():
            shutil.copy(path, held_back / f"{late_id}-{leg}.wav")
        made[one_sided]["enc"].unlink()  # one leg lost before upload
        for path in made[cut].values():
            _cut(path, 0.4)  # the recorder stopped early
        await service.request("POST", "/v1/calls", "ingest", [
            _record(call_id, call_id.removeprefix("dump-"), seconds)
            for call_id in (whole, one_sided, cut, late_id)])
        uploader = UploadWatch(service, spool, tmp_path / "uploader.log", *BARESIP_NAMES)
        await uploader.start()
        try:
            await until(spool_is_empty(spool), 60, "the calls' files left the spool")
            decided = run_cli(service.data, "reconcile", "--config", str(service.config),
                              check=True)
            assert json.loads(decided.stdout) == {
                "recorded": 1, "missing": 1, "short": 1, "partial": 1}
            period = {"from": time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(time.time() - 86400)),
                      "to": time.strftime("%Y-%m-%dT23:59:59Z", time.gmtime(time.time() + 86400))}
            report = await service.request("GET", "/v1/coverage", "supervisor", **period)
            assert {k: report["counts"][k] for k in ("recorded", "missing", "short", "partial")} \
                == {"recorded": 1, "missing": 1, "short": 1, "partial": 1}
            calls = {c["call_id"]: c for c in (await service.request(
                "GET", "/v1/calls", "supervisor", **period))["items"]}
            assert [calls[i]["status"] for i in (whole, one_sided, cut, late_id)] == [
                "recorded", "partial", "short", "missing"]
            assert [leg["leg"] for leg in calls[one_sided]["legs"]] == ["caller"]

            # The missing call's files turn up in the spool late: recorded on arrival.
            for path in held_back.iterdir():
                shutil.move(path, spool / path.name)
            await until(spool_is_empty(spool), 60, "the late files left the spool")
            late = (await service.request("GET", "/v1/calls", "supervisor", call_id=late_id,
                                          **period))["items"]
            assert late[0]["status"] == "recorded"
            assert sorted(leg["leg"] for leg in late[0]["legs"]) == ["callee", "caller"]
        finally:
            await uploader.stop()
    finally:
        await service.stop()


async def test_a_real_call_is_redacted_and_the_proof_checks_offline(
        recorder: tuple[Recorder, Path], tmp_path: Path) -> None:  # noqa: F811
    sip, spool = recorder
    service = Service(tmp_path, roles=("ingest", "supervisor", "compliance", "auditor"))
    await service.start()
    try:
        assert "Successful call" in await sip.call()
        uploader = UploadWatch(service, spool, tmp_path / "uploader.log", *BARESIP_NAMES,
                               "--purpose", "legal_protection")
        await uploader.start()
        try:
            await until(spool_is_empty(spool), 60, "both call legs left the spool")
        finally:
            await uploader.stop()
        caller = next(r for r in await service.recordings() if r["leg"] == "caller")
        path = f"/v1/recordings/{caller['id']}"
        done = await service.request("POST", f"{path}/redactions", "compliance", {
            "spans": [{"start_ms": 2000, "end_ms": 3500}], "reason": "pci"}, expect=201)
        proof = await service.request("GET", f"{path}/redactions/{done['id']}/proof",
                                      "auditor")
        key = await service.request("GET", "/v1/audit/public-key", "auditor")
        async with aiohttp.ClientSession() as session, session.get(
                f"{service.url}{path}/audio",
                headers={"Authorization": f"Bearer {service.tokens['compliance']}",
                         "Access-Purpose": "legal_protection"}) as r:
            assert r.status == 200
            audio = await r.read()
        files = {"receipt": json.dumps(done["receipt"]).encode(),
                 "proof": json.dumps(proof).encode(), "audio": audio, "public-key": key}
        for name, data in files.items():
            (tmp_path / name).write_bytes(data)
        checked = run_cli(tmp_path / "nowhere", "verify-redaction", *[
            arg for name in files for arg in (f"--{name}", str(tmp_path / name))])
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert json.loads(checked.stdout) == {"ok": True, "problems": []}
    finally:
        await service.stop()


async def test_the_uploader_killed_mid_upload_delivers_exactly_once_after_restart(
        service: Service, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    await service.start()
    audio = long_wav(400)  # 77 MB: long enough to be killed while sending it
    for number in range(3):
        path = spool / f"big-{number}.wav"
        path.write_bytes(audio[:-number - 1] if number else audio)
        path.with_suffix(".json").write_text(json.dumps(
            {"call_id": f"big-{number}", "started_at": "2026-11-24T09:00:00Z"}))
        for item in (path, path.with_suffix(".json")):
            os.utime(item, (time.time() - 10, time.time() - 10))
    log = tmp_path / "uploader.log"
    uploader = UploadWatch(service, spool, log)
    await uploader.start()
    killed_while_sending: list[str] = []
    try:
        for _ in range(2):
            await until(lambda: receiving(service.data), 60, "the service was receiving")
            uploader.kill()
            await uploader.process.wait()  # type: ignore[union-attr]
            killed_while_sending.append(log_events(log, "uploading")[-1]["file_ref"])
            await uploader.start()
        await until(spool_is_empty(spool), 180, "everything was delivered")
    finally:
        await uploader.stop()
    stored = await service.recordings()
    assert sorted(r["call_id"] for r in stored) == ["big-0", "big-1", "big-2"]
    assert [r["size_bytes"] for r in sorted(stored, key=lambda r: r["call_id"])] == [
        len(audio), len(audio) - 2, len(audio) - 3]
    # A killed upload left nothing in the service: its file was stored later, as new (201),
    # not found already there (200).
    delivered = {e["file_ref"]: e["status"] for e in log_events(log, "delivered")}
    assert any(delivered[ref] == 201 for ref in killed_while_sending), (killed_while_sending,
                                                                        delivered)


def receiving(data: Path) -> bool:
    """The service is part way through an upload: its blob store holds a partial one."""
    return any(p.is_file() and p.stat().st_size > 1024 * 1024 and p.suffix != ".lock"
               for p in (data / "tmp").rglob("*"))


def log_events(log: Path, message: str) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [e for e in events if e.get("msg") == message]
