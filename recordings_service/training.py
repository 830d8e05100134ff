"""The training library: collections of clips that forget what they must.

A clip is a span of a recording with a note. Adding one is an access to the call for
``training``; playing one is too, checked at every play and never cached, so a clip stops
playing the moment its recording may no longer be used for training (the purpose expired
or withdrawn, the recording restricted or purged), and says why. A collection shared with
agents lets them play its clips, only those and only within their spans.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from recordings_service import access, auditing, clip_audio, policy
from recordings_service.auditing import Origin
from recordings_service.auth import Actor, is_agent_only
from recordings_service.documents import rfc3339
from recordings_service.errors import BadRequest, Conflict, NotFound, ServiceError
from recordings_service.fields import optional_text, required_text
from recordings_service.pagination import decode_cursor, page_of
from recordings_service.services import Services
from storage import catalog, collection_store
from storage.catalog import Recording
from storage.collection_store import Clip, Collection
from storage.limits import IDENTIFIER

PURPOSE = "training"
MAX_CLIPS = 500  # per collection: a collection is read whole
NAME_LENGTH = 200
TEXT_LENGTH = 2000


def collection_json(c: Collection) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "description": c.description, "owner": c.owner,
            "created_at": rfc3339(c.created_at)}


@dataclass(frozen=True)
class ClipState:
    clip: Clip
    playable: bool
    reason: str | None
    detail: str | None

    def json(self) -> dict[str, Any]:
        c = self.clip
        return {"id": c.id, "recording_id": c.recording_id,
                "start_seconds": c.start_seconds, "end_seconds": c.end_seconds,
                "note": c.note, "added_by": c.added_by, "created_at": rfc3339(c.created_at),
                "playable": self.playable, "reason": self.reason, "detail": self.detail,
                "audio_url": f"/v1/collections/{c.collection_id}/clips/{c.id}/audio"}


def _audit(services: Services, actor: Actor, origin: Origin, action: str,
           detail: dict[str, Any], recording_id: str | None = None) -> Any:
    return auditing.record(services, auditing.event(
        actor, origin, action, "allowed", recording_id=recording_id, detail=detail))


async def create(services: Services, actor: Actor, origin: Origin,
                 body: dict[str, Any]) -> Collection:
    name = required_text(body.get("name"), "name", NAME_LENGTH, "invalid_collection")
    description = optional_text(body.get("description"), "description", TEXT_LENGTH,
                                "invalid_collection")
    found = Collection("col_" + secrets.token_urlsafe(12), name, description, actor.name,
                       services.clock())
    async with services.database.write() as conn:
        await collection_store.insert_collection(conn, found)
    await _audit(services, actor, origin, "collection_created", {"collection_id": found.id})
    return found


async def _visible(services: Services, actor: Actor, origin: Origin, action: str,
                   collection_id: str) -> Collection:
    """The collection, if the caller may see it: a reviewer any, an agent those shared
    with them (to anyone else it does not exist). A refusal is audited."""
    async with services.database.read() as conn:
        found = await collection_store.get_collection(conn, collection_id)
        if found is not None and is_agent_only(actor):
            shared = actor.agent_id is not None and await collection_store.is_shared(
                conn, found.id, actor.agent_id)
            found = found if shared else None
    if found is None:
        await auditing.record(services, auditing.event(
            actor, origin, action, "denied", reason="not_found",
            detail={"collection_id": collection_id[:64]}))
        raise NotFound("no such collection")
    return found


async def list_visible(services: Services, actor: Actor, cursor: str | None,
                       limit: int) -> tuple[list[Collection], str | None]:
    agent = actor.agent_id or "" if is_agent_only(actor) else None
    async with services.database.read() as conn:
        found = await collection_store.list_collections(conn, decode_cursor(cursor),
                                                        limit + 1, agent)
    return page_of(found, limit, lambda c: (c.created_at, c.id))


def clip_state(services: Services, actor: Actor, clip: Clip,
               rec: Recording | None) -> ClipState:
    """Whether the caller may play the clip now, and if not why: the same check as a
    play makes."""
    if rec is None or rec.state != "active":
        return ClipState(clip, False, "purged", "the recording has been purged")
    try:
        policy.check_access(actor.roles, PURPOSE, policy.states_of(rec), rec.restricted,
                            services.config.purposes, services.clock())
    except ServiceError as refused:
        return ClipState(clip, False, refused.reason, refused.detail)
    return ClipState(clip, True, None, None)


async def read(services: Services, actor: Actor, origin: Origin, collection_id: str,
               ) -> tuple[Collection, list[ClipState], list[str]]:
    """The collection, each clip with whether it plays now, and whom it is shared with."""
    found = await _visible(services, actor, origin, "collection_read", collection_id)
    async with services.database.read() as conn:
        clips = await collection_store.clips_of(conn, found.id, MAX_CLIPS)
        recs = {r.id: r for r in await catalog.get_recordings(
            conn, sorted({c.recording_id for c in clips}))}
        agents = [] if is_agent_only(actor) else await collection_store.shared_with(
            conn, found.id)
    await _audit(services, actor, origin, "collection_read", {"collection_id": found.id})
    return found, [clip_state(services, actor, c, recs.get(c.recording_id))
                   for c in clips], agents


def _seconds(body: dict[str, Any], field: str) -> float:
    value = body.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not 0 <= value <= 10 ** 7:
        raise BadRequest("invalid_clip", f"{field} is a number of seconds from 0")
    return round(float(value), 3)


async def add_clip(services: Services, actor: Actor, origin: Origin, collection_id: str,
                   body: dict[str, Any]) -> Clip:
    """A span of a call the caller may use for training now; WAV recordings only."""
    start, end = _seconds(body, "start_seconds"), _seconds(body, "end_seconds")
    if end <= start:
        raise BadRequest("invalid_clip", "end_seconds comes after start_seconds")
    note = optional_text(body.get("note"), "note", TEXT_LENGTH, "invalid_clip")
    recording_id = required_text(body.get("recording_id"), "recording_id", IDENTIFIER,
                                 "invalid_clip")
    found = await _visible(services, actor, origin, "clip_added", collection_id)
    clip = Clip("clip_" + secrets.token_urlsafe(12), found.id, recording_id, start, end,
                note, actor.name, services.clock())
    rec = await access.authorize_audio(
        services, actor, origin, "clip_added", recording_id, PURPOSE,
        {"collection_id": found.id, "clip_id": clip.id, "span": [start, end]})
    layout = await _layout(services, rec)
    if end > layout.seconds + 0.001:
        raise BadRequest("invalid_clip", f"the call lasts {layout.seconds:.3f} s")
    async with services.database.write() as conn:
        if len(await collection_store.clips_of(conn, found.id, MAX_CLIPS)) >= MAX_CLIPS:
            raise Conflict("collection_full", f"a collection holds at most {MAX_CLIPS} clips")
        await collection_store.insert_clip(conn, clip)
    return clip


async def _layout(services: Services, rec: Recording) -> clip_audio.WavLayout:
    if rec.content_type != "audio/wav":
        raise clip_audio.unsupported()
    async with access.open_reader(services, rec) as reader:
        head = b"".join([bytes(c) async for c in reader.iter_range(
            0, min(rec.size_bytes, clip_audio.HEADER_BYTES) - 1)])
    return clip_audio.wav_layout(head, rec.size_bytes)


async def remove_clip(services: Services, actor: Actor, origin: Origin, collection_id: str,
                      clip_id: str) -> None:
    async with services.database.write() as conn:
        removed = await collection_store.delete_clip(conn, collection_id, clip_id)
    if not removed:
        raise NotFound("no such clip in this collection")
    await _audit(services, actor, origin, "clip_removed",
                 {"collection_id": collection_id, "clip_id": clip_id})


def _agent_id(value: str) -> str:
    agent = optional_text(value, "agent_id", IDENTIFIER, "invalid_agent_id")
    if not agent:
        raise BadRequest("invalid_agent_id", "name the agent")
    return agent


async def share(services: Services, actor: Actor, origin: Origin, collection_id: str,
                agent_id: str, shared: bool) -> bool:
    """Shares with an agent, or stops sharing; False when nothing changed."""
    agent = _agent_id(agent_id)
    found = await _visible(services, actor, origin, "collection_shared", collection_id)
    async with services.database.write() as conn:
        changed = (await collection_store.share(conn, found.id, agent, actor.name,
                                                services.clock()) if shared
                   else await collection_store.unshare(conn, found.id, agent))
    if changed:
        await _audit(services, actor, origin,
                     "collection_shared" if shared else "collection_unshared",
                     {"collection_id": found.id, "agent_id": agent})
    return changed


async def open_clip(services: Services, actor: Actor, origin: Origin, collection_id: str,
                    clip_id: str, detail: dict[str, Any],
                    ) -> tuple[Recording, clip_audio.WavLayout, Clip]:
    """Authorizes a play of the clip (audited as a training access to its recording)."""
    found = await _visible(services, actor, origin, "clip_play", collection_id)
    async with services.database.read() as conn:
        clip = await collection_store.get_clip(conn, found.id, clip_id)
    if clip is None:
        raise NotFound("no such clip in this collection")
    rec = await access.authorize_audio(
        services, actor, origin, "clip_play", clip.recording_id, PURPOSE,
        {**detail, "collection_id": found.id, "clip_id": clip.id,
         "span": [clip.start_seconds, clip.end_seconds]}, clip=True)
    return rec, await _layout(services, rec), clip
