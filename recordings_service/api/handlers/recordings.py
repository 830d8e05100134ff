"""Upload (multipart POST and raw PUT), metadata and search."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from recordings_service import access, disk, ingest
from recordings_service.api.handlers.body_watch import BodyWatch
from recordings_service.api.handlers.common import (
    caller,
    json_response,
    page_limit,
    parse_json_object,
    query_choice,
    query_seconds,
    query_time,
    recording_for_caller,
    watched,
)
from recordings_service.appkeys import ACTOR, UPLOAD_SLOTS, origin, services
from recordings_service.errors import (
    BadRequest,
    InsufficientStorage,
    PayloadTooLarge,
    ServiceError,
    Unavailable,
)
from storage.recording_search import DEFAULT_SORT, SORTS, SearchFilter

CHUNK = 256 * 1024
MAX_METADATA = 64 * 1024


def _check_declared_size(request: web.Request) -> None:
    config = services(request).config
    limit = config.max_upload_bytes
    # Multipart framing adds a little; the audio itself is checked byte by byte.
    if request.content_length is not None and request.content_length > limit + MAX_METADATA:
        raise PayloadTooLarge("too_large", f"recordings are limited to {limit} bytes")
    needed = (request.content_length or 0) + config.min_free_disk_bytes
    if disk.free_bytes(config.data_dir) < needed:
        raise InsufficientStorage("insufficient_storage",
                                  "the service's storage is nearly full; nothing was stored")


def _cut_short() -> BadRequest:
    return BadRequest("invalid_multipart",
                      "the multipart body ends before a part's closing boundary")


async def _part_chunks(watch: BodyWatch, part: BodyPartReader) -> AsyncIterator[bytes]:
    """A part's bytes; raises unless the part ended at its boundary (a body cut short
    must never pass for a complete, shorter recording)."""
    try:
        while chunk := await watch.read(part.read_chunk(CHUNK)):
            yield chunk
    except ValueError:
        raise _cut_short() from None
    if not part.at_eof():
        raise _cut_short()


async def _next_part(watch: BodyWatch, reader: MultipartReader) -> BodyPartReader | None:
    try:
        with watch.reading():
            part = await reader.next()
        watch.progress()
    except (ValueError, AssertionError, KeyError, HttpProcessingError):
        raise BadRequest("invalid_multipart", "the multipart body cannot be parsed") from None
    if part is not None and not isinstance(part, BodyPartReader):
        raise BadRequest("invalid_multipart", "nested multipart bodies are not accepted")
    return part


async def _audio_then_end(watch: BodyWatch, reader: MultipartReader,
                          audio: BodyPartReader) -> AsyncIterator[bytes]:
    """The audio part's bytes, then proof that the body ended right after it: its closing
    boundary and nothing else (a second audio part is refused, not ignored)."""
    async for chunk in _part_chunks(watch, audio):
        yield chunk
    if await _next_part(watch, reader) is not None:
        raise BadRequest("invalid_multipart",
                         "the body must hold exactly two parts: metadata, then audio")
    if not reader.at_eof():
        raise _cut_short()
    watch.finished()


def _answer(request: web.Request, result: ingest.UploadResult) -> web.Response:
    svc = services(request)
    svc.metrics.uploads.labels("created" if result.created else "existing").inc()
    body = recording_for_caller(request, result.recording)
    location = f"/v1/recordings/{result.recording.id}"
    return json_response(body, status=201 if result.created else 200,
                         headers={"Location": location})


async def _upload(request: web.Request, meta: ingest.UploadMetadata,
                  body: AsyncIterator[bytes]) -> web.Response:
    actor = request[ACTOR]
    try:
        result = await ingest.upload(services(request), actor, origin(request), meta, body)
    except ServiceError:
        services(request).metrics.uploads.labels("rejected").inc()
        raise
    return _answer(request, result)


@asynccontextmanager
async def _upload_slot(request: web.Request) -> AsyncIterator[None]:
    """One of ``limits.max_concurrent_uploads``, and no more than
    ``limits.max_uploads_per_client`` of them for one credential or one client address,
    so that one misbehaving sender cannot take every slot from an honest PBX. Refused at
    once when none is free (a queue would hold the sockets and buffers the cap is there
    to bound)."""
    slots = request.app[UPLOAD_SLOTS]
    keys = (f"credential:{request[ACTOR].name}", f"address:{origin(request).client_ip}")
    if any(slots.held(key) >= services(request).config.max_uploads_per_client
           for key in keys):
        raise Unavailable("too_many_uploads_from_client",
                          "this client is sending as many uploads at once as it may; "
                          "retry when one has finished", 2)
    if slots.full():
        raise Unavailable("too_many_uploads",
                          "too many uploads are being received; retry shortly", 2)
    with slots.take(keys):
        yield


async def post_recording(request: web.Request) -> web.Response:
    _check_declared_size(request)
    async with _upload_slot(request), watched(request) as watch:
        return await _post_recording(request, watch)


async def _post_recording(request: web.Request, watch: BodyWatch) -> web.Response:
    if not request.content_type.startswith("multipart/"):
        raise BadRequest("invalid_multipart",
                         "send multipart/form-data with a metadata part, then an audio part")
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError, KeyError):
        raise BadRequest("invalid_multipart", "the multipart body cannot be parsed") from None
    part = await _next_part(watch, reader)
    if part is None or part.name != "metadata":
        raise BadRequest("invalid_multipart", "the first part must be named metadata")
    raw = b""
    async for chunk in _part_chunks(watch, part):
        raw += chunk
        if len(raw) > MAX_METADATA:
            raise BadRequest("invalid_metadata", "the metadata part is too large")
    fields = parse_json_object(raw, "invalid_metadata", "the metadata part")
    meta = ingest.parse_metadata(fields, services(request).config.purposes)
    audio = await _next_part(watch, reader)
    if audio is None or audio.name != "audio":
        raise BadRequest("invalid_multipart", "the second part must be named audio")
    return await _upload(request, meta, _audio_then_end(watch, reader, audio))


async def put_recording(request: web.Request) -> web.Response:
    _check_declared_size(request)
    async with _upload_slot(request), watched(request) as watch:
        return await _put_recording(request, watch)


_QUERY_FIELDS = ("started_at", "ended_at", "direction", "agent_id", "customer_id",
                 "phone_number", "queue", "sha256", "leg")
METADATA_HEADER = "Recording-Metadata"


def _put_metadata(request: web.Request) -> dict[str, Any]:
    """The upload's fields from the ``Recording-Metadata`` header (a JSON object, so that
    personal data stays out of URLs and proxy logs) or from the query, never both."""
    q = request.query
    header = request.headers.get(METADATA_HEADER)
    if header is None:
        fields: dict[str, Any] = {key: q[key] for key in _QUERY_FIELDS if key in q}
        fields["purposes"] = q.getall("purpose", [])
        return fields
    if any(key in q for key in (*_QUERY_FIELDS, "purpose")):
        raise BadRequest("invalid_metadata", f"give the metadata in the {METADATA_HEADER} "
                                             f"header or in the query, not both")
    fields = parse_json_object(header.encode(), "invalid_metadata", METADATA_HEADER)
    if "call_id" in fields:
        raise BadRequest("invalid_metadata", "the call_id is the one in the path")
    return fields


async def _put_recording(request: web.Request, watch: BodyWatch) -> web.Response:
    fields = _put_metadata(request)
    fields["call_id"] = request.match_info["call_id"]
    meta = ingest.parse_metadata(fields, services(request).config.purposes)
    return await _upload(request, meta, _raw_chunks(watch, request))


async def _raw_chunks(watch: BodyWatch, request: web.Request) -> AsyncIterator[bytes]:
    while chunk := await watch.read(request.content.read(CHUNK)):
        yield chunk
    watch.finished()



async def get_recording(request: web.Request) -> web.Response:
    actor = caller(request)
    svc = services(request)
    rec = await access.view_metadata(svc, actor, origin(request),
                                     request.match_info["recording_id"])
    body = recording_for_caller(request, rec)
    if rec.call_id is not None:
        # The call's recordings side by side: each of its legs, this one included.
        body["legs"] = [{"id": i, "leg": leg} for i, leg in await access.legs_of(svc, rec)]
    return json_response(body)


async def list_recordings(request: web.Request) -> web.Response:
    actor = caller(request)
    svc = services(request)
    q = request.query
    state = q.get("state")
    if state is not None and state not in ("active", "purged"):
        raise BadRequest("invalid_query", "state must be active or purged")
    sort = query_choice(request, "sort", (DEFAULT_SORT, *(s for s in SORTS if s != DEFAULT_SORT)))
    flt = SearchFilter(customer_id=q.get("customer_id"), call_id=q.get("call_id"),
                       agent_id=q.get("agent_id"), queue=q.get("queue"),
                       phone_number=q.get("phone_number"), direction=q.get("direction"),
                       purpose=q.get("purpose"),
                       min_duration=query_seconds(request, "min_duration"),
                       max_duration=query_seconds(request, "max_duration"),
                       started_after=query_time(request, "started_after"),
                       started_before=query_time(request, "started_before"), state=state,
                       prefix=query_choice(request, "match", ("exact", "prefix")) == "prefix")
    found = await access.search(svc, actor, origin(request), flt, q.get("cursor"),
                                page_limit(request), sort)
    return json_response({"items": [recording_for_caller(request, r) for r in found.items],
                          "next_cursor": found.next_cursor, "prev_cursor": found.prev_cursor})
