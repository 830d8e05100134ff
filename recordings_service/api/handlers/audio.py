"""Audio: purpose-bound, audited, decrypted on the fly, with single byte ranges."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from recordings_service import access, clip_audio, training
from recordings_service.api.handlers.common import caller, json_body, json_response
from recordings_service.appkeys import SESSION, origin, services
from recordings_service.auth import Actor
from recordings_service.documents import rfc3339
from recordings_service.errors import BadRequest
from recordings_service.ranges import parse_range
from recordings_service.services import Services
from storage.catalog import Recording
from storage.errors import StorageError

log = logging.getLogger(__name__)
_POINTS = re.compile(r"[0-9]{1,5}")


def _detail(request: web.Request, via_link: bool = False) -> dict[str, object]:
    detail: dict[str, object] = {"method": request.method,
                                 "range": request.headers.get("Range")}
    if via_link:
        detail["via"] = "playback_link"
    return detail


async def _send_audited(request: web.Request, svc: Services, rec: Recording, actor: Actor,
                        purpose: str, detail: dict[str, object]) -> web.StreamResponse:
    """Sends the audio of an access already logged as allowed; a failure to send it (key,
    blob, integrity) is logged too, so the log never claims an access that did not happen
    as it says."""
    async def failed(exc: StorageError) -> None:
        await access.record_failure(svc, actor, origin(request), "stream", rec, purpose,
                                    exc, detail)

    async def cut(start: int, end: int, sent: int) -> None:
        await access.record_cut(svc, actor, origin(request), rec, purpose, start, end, sent)

    try:
        return await _send(request, svc, Source(rec, rec.size_bytes, f'"{rec.sha256}"',
                                                rec.content_type, access.open_reader(svc, rec)),
                           failed, cut)
    except StorageError as exc:  # before the first byte: answered as a 500 problem
        await failed(exc)
        raise


@dataclass(frozen=True)
class Source:
    """What is sent: the recording's audio, or a clip's file cut from it."""

    rec: Recording
    size: int
    etag: str
    content_type: str
    reader: AbstractAsyncContextManager[clip_audio.RangeReader]


async def _send(request: web.Request, svc: Services, source: Source,
                failed: Callable[[StorageError], Awaitable[None]],
                cut: Callable[[int, int, int], Awaitable[None]]) -> web.StreamResponse:
    rec, size, etag = source.rec, source.size, source.etag
    range_header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != etag:
        range_header = None  # the client's copy is stale: send it whole
    byte_range = parse_range(range_header, size)
    start, end = (byte_range.start, byte_range.end) if byte_range else (0, size - 1)

    async with source.reader as reader:
        response = web.StreamResponse(status=206 if byte_range else 200, headers={
            "Accept-Ranges": "bytes", "ETag": etag, "Cache-Control": "no-store",
            "Content-Type": source.content_type,
        })
        if byte_range:
            response.headers["Content-Range"] = byte_range.content_range(size)
        response.content_length = end - start + 1
        if request.method == "HEAD":
            await response.prepare(request)
            return response

        chunks = reader.iter_range(start, end)
        # The first piece is decrypted before the headers go out, so a failure there is a
        # plain 500; a failure later cuts the connection short of Content-Length.
        first = await anext(chunks, b"")
        sent = 0
        try:
            await response.prepare(request)
            await response.write(first)
            sent = len(first)
            async for chunk in chunks:
                await response.write(chunk)
                sent += len(chunk)
        except (ConnectionError, asyncio.CancelledError):
            # The listener went away (a player that seeks drops its request): the log says
            # how much of the range was sent, so "who heard what" is not what was asked.
            await asyncio.shield(cut(start, end, sent))
            raise
        except StorageError as exc:
            svc.metrics.integrity_failures.inc()
            log.error("stored audio failed authentication mid-stream; connection cut",
                      extra={"recording_id": rec.id, "error": type(exc).__name__})
            if request.transport is not None:
                request.transport.abort()
            await failed(exc)
            return response
        finally:
            svc.metrics.bytes_streamed.inc(sent)
    await response.write_eof()
    return response


async def get_audio(request: web.Request) -> web.StreamResponse:
    actor = caller(request)
    svc = services(request)
    purpose = request.headers.get("Access-Purpose") or request.query.get("purpose")
    detail = _detail(request)
    rec = await access.authorize_audio(svc, actor, origin(request), "stream",
                                       request.match_info["recording_id"], purpose, detail)
    assert purpose is not None  # authorized
    return await _send_audited(request, svc, rec, actor, purpose, detail)


async def get_waveform(request: web.Request) -> web.Response:
    svc = services(request)
    raw = request.query.get("points", "1000")
    if not _POINTS.fullmatch(raw) or not 10 <= int(raw) <= 5000:
        raise BadRequest("invalid_query", "points must be an integer from 10 to 5000")
    purpose = request.headers.get("Access-Purpose") or request.query.get("purpose")
    rec, seconds, levels = await access.waveform_of(
        svc, caller(request), origin(request), request.match_info["recording_id"], purpose,
        int(raw))
    return json_response({"recording_id": rec.id, "duration_seconds": rec.duration_seconds,
                          "seconds_per_level": seconds, "levels": levels},
                         headers={"Cache-Control": "no-store"})


async def post_playback_link(request: web.Request) -> web.Response:
    actor = caller(request)
    svc = services(request)
    body = await json_body(request)
    purpose = body.get("purpose")
    session = request.get(SESSION)
    renews = body.get("renews", False)
    if not isinstance(renews, bool):
        raise BadRequest("invalid_json", "renews must be true or false")
    token, expires_at = await access.create_link(
        svc, actor, origin(request), request.match_info["recording_id"],
        purpose if isinstance(purpose, str) else None,
        None if session is None else session.id_hash, renews)
    # expires_in too: a browser's clock need not agree with ours.
    return json_response({"url": f"/v1/playback/{token}", "expires_at": rfc3339(expires_at),
                          "expires_in": svc.config.link_ttl_seconds}, status=201)


async def get_playback(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    detail = _detail(request, via_link=True)
    rec, actor, purpose = await access.resolve_link(svc, request.match_info["token"],
                                                    origin(request), detail)
    return await _send_audited(request, svc, rec, actor, purpose, detail)


@asynccontextmanager
async def _clip_reader(svc: Services, rec: Recording, clip: clip_audio.ClipFile,
                       ) -> AsyncIterator[clip_audio.RangeReader]:
    async with access.open_reader(svc, rec) as reader:
        yield clip_audio.ClipReader(reader, clip)


async def get_clip_audio(request: web.Request) -> web.StreamResponse:
    """A training clip as a WAV of its own span: nothing outside it can be asked for."""
    actor = caller(request)
    svc = services(request)
    detail = _detail(request)
    rec, layout, clip = await training.open_clip(
        svc, actor, origin(request), request.match_info["collection_id"],
        request.match_info["clip_id"], detail)
    cut_from = clip_audio.clip_file(layout, clip.start_seconds, clip.end_seconds)

    async def failed(exc: StorageError) -> None:
        await access.record_failure(svc, actor, origin(request), "clip_play", rec,
                                    training.PURPOSE, exc, detail)

    async def cut(start: int, end: int, sent: int) -> None:
        # Said in the recording's bytes, as for any stream (who heard which part).
        header = len(cut_from.header)
        audio_sent = max(0, sent - max(0, header - start))
        first = cut_from.first + max(0, start - header)
        await access.record_cut(svc, actor, origin(request), rec, training.PURPOSE, first,
                                cut_from.first + max(0, end - header), audio_sent)

    source = Source(rec, cut_from.size, f'"{rec.sha256}-{clip.id}"', "audio/wav",
                    _clip_reader(svc, rec, cut_from))
    try:
        return await _send(request, svc, source, failed, cut)
    except StorageError as exc:
        await failed(exc)
        raise
