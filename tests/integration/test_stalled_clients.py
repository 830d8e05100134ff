"""Slow, stalled and dropped clients: bounded in time and in number, leaving nothing."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from typing import Any

import pytest

from recordings_service.api.handlers import body_watch
from recordings_service.app import create_app
from recordings_service.auth import create_token
from recordings_service.config import Config
from tests.audio import wav_noise
from tests.conftest import Api, FrozenClock
from tests.integration.helpers import incomplete, recording_count, stored_blobs


@pytest.fixture
async def api(aiohttp_client: Any, config: Config, clock: FrozenClock) -> Api:
    limited = config.with_overrides(body_idle_timeout_seconds=0.5, max_concurrent_uploads=4)
    client = await aiohttp_client(create_app(limited, clock))
    api = Api(client, clock)
    for role in ("ingest", "compliance"):
        api.tokens[role] = await create_token(api.services.database, role, [role], clock())
    return api


async def _stall(api: Api, call_id: str, body_sent: int = 1_500_000, size: int = 2_000_000,
                 ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A PUT that declares ``size`` bytes, sends ``body_sent`` of them and then nothing."""
    audio = wav_noise(size)
    reader, writer = await asyncio.open_connection(api.client.host, api.client.port)
    writer.write((f"PUT /v1/calls/{call_id}/recording?started_at=2026-11-24T09:00:00Z"
                  f"&purpose=training HTTP/1.1\r\nHost: x\r\n"
                  f"Authorization: Bearer {api.tokens['ingest']}\r\n"
                  f"Content-Length: {len(audio)}\r\n\r\n").encode() + audio[:body_sent])
    await writer.drain()
    return reader, writer


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    status = int(head.split(b" ")[1])
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    return status, json.loads(await reader.readexactly(length)), head


async def test_a_stalled_upload_is_answered_408_and_leaves_nothing(api: Api) -> None:
    reader, writer = await _stall(api, "stalled")
    status, problem, head = await _answer(reader)
    assert (status, problem["reason"]) == (408, "body_timeout")
    assert b"Connection: close" in head
    writer.close()
    assert await incomplete(api.services) == 0 and await stored_blobs(api.services) == []
    assert await recording_count(api.services) == 0


async def test_many_stalled_clients_are_all_let_go(api: Api) -> None:
    stalled = [await _stall(api, f"s{i}", body_sent=10_000) for i in range(100)]
    answers = await asyncio.gather(*(_answer(reader) for reader, _ in stalled))
    # Four were received until they stalled, the rest refused at once; none is left hanging.
    assert {(status, problem["reason"]) for status, problem, _ in answers} == {
        (408, "body_timeout"), (503, "too_many_uploads")}
    for _, writer in stalled:
        writer.close()
    assert await incomplete(api.services) == 0


async def test_uploads_beyond_the_cap_are_refused_at_once_with_retry_after(api: Api) -> None:
    stalled = [await _stall(api, f"c{i}", body_sent=10_000) for i in range(4)]
    await asyncio.sleep(0.1)  # all four are being received
    refused = await api.client.put("/v1/calls/fifth/recording",
                                   params={"started_at": "2026-11-24T09:00:00Z",
                                           "purpose": "training"},
                                   data=wav_noise(20_000), headers=api.auth("ingest"))
    assert refused.status == 503
    assert (await refused.json())["reason"] == "too_many_uploads"
    assert int(refused.headers["Retry-After"]) > 0
    for reader, writer in stalled:
        await _answer(reader)
        writer.close()
    # Slots come back once the stalled ones are let go.
    accepted = await api.client.put("/v1/calls/fifth/recording",
                                    params={"started_at": "2026-11-24T09:00:00Z",
                                            "purpose": "training"},
                                    data=wav_noise(20_000), headers=api.auth("ingest"))
    assert accepted.status == 201


async def test_a_slow_but_steady_upload_is_not_cut(api: Api) -> None:
    audio = wav_noise(200_000)

    async def steady() -> Any:
        for at in range(0, len(audio), 10_000):
            yield audio[at : at + 10_000]
            await asyncio.sleep(0.15)  # well under the 0.5 s idle limit, 3 s in all

    response = await api.client.put("/v1/calls/steady/recording", data=steady(), params={
        "started_at": "2026-11-24T09:00:00Z", "purpose": "training"},
        headers=api.auth("ingest"))
    assert response.status == 201


async def test_the_services_own_slowness_before_reading_the_audio_is_not_the_clients(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    # A catalog or store that takes longer than a rate window and the idle limit before
    # the service reads the first audio byte once answered a 1 kB upload 408.
    monkeypatch.setattr(body_watch, "RATE_WINDOW_SECONDS", 1.0)
    opened = api.services.blobs.open_writer

    async def slow_open(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(2.5)
        return await opened(*args, **kwargs)

    monkeypatch.setattr(api.services.blobs, "open_writer", slow_open)
    response = await api.client.put("/v1/calls/waited/recording", data=wav_noise(1_000),
                                    params={"started_at": "2026-11-24T09:00:00Z",
                                            "purpose": "training"},
                                    headers=api.auth("ingest"))
    assert response.status == 201, await response.text()


async def test_time_the_event_loop_was_held_is_not_the_clients_silence(api: Api) -> None:
    audio = wav_noise(200_000)
    reader, writer = await _stall(api, "held", body_sent=100_000, size=200_000)
    await asyncio.sleep(0.2)  # the service has read the first half and waits for more
    time.sleep(2.0)  # noqa: ASYNC251 - the point: the loop is held past the 0.5 s idle limit
    writer.write(audio[100_000:])  # sent the moment the loop is free
    status, body, _ = await _answer(reader)
    assert status == 201, body
    writer.close()


async def test_a_stalled_json_body_is_answered_408(api: Api) -> None:
    reader, writer = await asyncio.open_connection(api.client.host, api.client.port)
    writer.write((f"POST /v1/legal-holds HTTP/1.1\r\nHost: x\r\n"
                  f"Authorization: Bearer {api.tokens['compliance']}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                  '{"case_reference": ').encode())
    await writer.drain()
    status, problem, _ = await _answer(reader)
    assert (status, problem["reason"]) == (408, "body_timeout")
    writer.close()


@pytest.fixture
async def crowded(aiohttp_client: Any, config: Config, clock: FrozenClock,
                  monkeypatch: pytest.MonkeyPatch) -> Api:
    """16 slots, 4 per client; clients behind a proxy at 127.0.0.1 that names each."""
    monkeypatch.setattr(body_watch, "RATE_WINDOW_SECONDS", 1.0)
    limited = config.with_overrides(
        body_idle_timeout_seconds=3.0, body_min_bytes_per_second=2000,
        max_concurrent_uploads=16, max_uploads_per_client=4,
        trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
    client = await aiohttp_client(create_app(limited, clock))
    api = Api(client, clock)
    for name in ("rogue-trickler", "rogue-staller", "pbx"):
        api.tokens[name] = await create_token(api.services.database, name, ["ingest"],
                                              clock())
    return api


async def _misbehave(api: Api, token: str, address: str, trickle: bool,
                     stop: asyncio.Event, answers: list[tuple[int, str]]) -> None:
    """Over and over: a PUT that sends one byte every 0.3 s (never silent, never done), or
    10 kB and then nothing; each answer is noted."""
    n, audio = 0, wav_noise(2_000_000)
    while not stop.is_set():
        n += 1
        reader, writer = await asyncio.open_connection(api.client.host, api.client.port)
        writer.write((f"PUT /v1/calls/{token}-{address}-{n}/recording"
                      f"?started_at=2026-11-24T09:00:00Z&purpose=training HTTP/1.1\r\n"
                      f"Host: x\r\nAuthorization: Bearer {api.tokens[token]}\r\n"
                      f"X-Forwarded-For: {address}\r\n"
                      f"Content-Length: 2000000\r\n\r\n").encode()
                     + audio[:1 if trickle else 10_000])
        answer = asyncio.ensure_future(_answer(reader))
        try:
            sent = 1
            while trickle and not answer.done() and not stop.is_set():
                await asyncio.sleep(0.3)
                writer.write(audio[sent:sent + 1])
                sent += 1
            status, problem, _ = await asyncio.wait_for(answer, 20)
            answers.append((status, problem["reason"]))
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            answer.cancel()
            writer.close()


async def test_an_honest_pbx_uploads_while_64_tricklers_and_64_stallers_misbehave(
        crowded: Api) -> None:
    api, stop = crowded, asyncio.Event()
    trickled: list[tuple[int, str]] = []
    stalled: list[tuple[int, str]] = []
    attackers = [asyncio.ensure_future(_misbehave(api, "rogue-trickler", f"203.0.113.{i}",
                                                  True, stop, trickled)) for i in range(64)]
    attackers += [asyncio.ensure_future(_misbehave(api, "rogue-staller", f"198.51.100.{i}",
                                                   False, stop, stalled)) for i in range(64)]
    await asyncio.sleep(1.0)  # every attacker has connected and holds what it can
    statuses = []
    for i in range(12):
        response = await api.client.put(
            f"/v1/calls/honest-{i}/recording",
            params={"started_at": "2026-11-24T09:00:00Z", "purpose": "training"},
            data=wav_noise(200_000 + i), headers={**api.auth("pbx"),
                                                  "X-Forwarded-For": "192.0.2.10"})
        statuses.append(response.status)
        await asyncio.sleep(0.25)
    await asyncio.sleep(3.5)  # long enough for the stalled ones to reach the idle timeout
    stop.set()
    await asyncio.gather(*attackers)
    assert statuses == [201] * 12
    # The tricklers were cut for their rate, the stallers for their rate or silence
    # (whichever ends first), and each sender beyond its share was refused at once.
    assert (408, "body_too_slow") in trickled
    assert {(408, "body_too_slow"), (408, "body_timeout")} & set(stalled)
    assert (503, "too_many_uploads_from_client") in trickled + stalled
    assert await incomplete(api.services) == 0
