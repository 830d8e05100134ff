"""Reading recordings: metadata, search, purpose-bound audio access and playback links.

Every decision, allowed or denied, is in the audit log (committed) before it is acted on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from recordings_service import auditing, policy, sessions, waveform
from recordings_service.auditing import Origin
from recordings_service.auth import Actor, actor_by_name, is_agent_only
from recordings_service.documents import rfc3339
from recordings_service.errors import BadRequest, Forbidden, Gone, NotFound, ServiceError
from recordings_service.fields import optional_text
from recordings_service.pagination import decode_search_cursor, encode_search_cursor
from recordings_service.services import Services
from storage import catalog, evaluation_store, recording_search
from storage.encrypted_blob import DecryptingReader
from storage.limits import IDENTIFIER


async def _get(services: Services, recording_id: str) -> catalog.Recording | None:
    async with services.database.read() as conn:
        return await catalog.get_recording(conn, recording_id)


async def _deny(services: Services, actor: Actor, origin: Origin, action: str,
                error: ServiceError, recording_id: str | None, purpose: str | None = None,
                detail: Mapping[str, Any] | None = None) -> ServiceError:
    await auditing.record(services, auditing.event(
        actor, origin, action, "denied", recording_id=recording_id, purpose=purpose,
        reason=error.reason, detail=detail))
    return error


async def view_metadata(services: Services, actor: Actor, origin: Origin,
                        recording_id: str) -> catalog.Recording:
    rec = await _get(services, recording_id)
    if rec is None:
        raise await _deny(services, actor, origin, "view_metadata", NotFound(), recording_id)
    await auditing.record(services, auditing.event(
        actor, origin, "view_metadata", "allowed", recording_id=recording_id))
    return rec


async def legs_of(services: Services, rec: catalog.Recording) -> list[tuple[str, str]]:
    """(id, leg) of the recordings of ``rec``'s call, itself included."""
    if rec.call_id is None:
        return []
    async with services.database.read() as conn:
        return await catalog.legs_of_call(conn, rec.call_id)


def allowed_purposes(services: Services, actor: Actor, rec: catalog.Recording) -> list[str]:
    """What ``actor`` may hear ``rec`` for now, by the check the audio endpoint runs."""
    if rec.state != "active":
        return []
    return policy.allowed_purposes(actor.roles, policy.states_of(rec), rec.restricted,
                                   services.config.purposes, services.clock())


def refusals(services: Services, actor: Actor, rec: catalog.Recording) -> dict[str, str]:
    """Why ``actor`` may not hear ``rec`` for each other purpose it is kept for."""
    return policy.refusals(actor.roles, policy.states_of(rec), rec.restricted,
                           services.config.purposes, services.clock())


SEARCHED_TEXT = ("customer_id", "call_id", "agent_id", "queue", "phone_number")
# A search's count is exact to this, and "more than" past it: the count reads at most
# this many index entries more than the page itself, on every page.
COUNT_CAP = 1_000


@dataclass(frozen=True)
class SearchPage:
    items: list[catalog.Recording]
    next_cursor: str | None
    prev_cursor: str | None


def _check_search(services: Services, actor: Actor, flt: recording_search.SearchFilter,
                  sort: str) -> recording_search.SearchFilter:
    for name in SEARCHED_TEXT:
        # Longer than its column can hold: PostgreSQL would match nothing, but say so.
        optional_text(getattr(flt, name), name, IDENTIFIER, "invalid_query")
    if sort not in recording_search.SORTS:
        raise BadRequest("invalid_query",
                         "sort must be one of " + ", ".join(recording_search.SORTS))
    if flt.phone_number is not None and "compliance" not in actor.roles:
        raise Forbidden("phone_search_forbidden", "only compliance searches by phone number")
    if flt.direction not in (None, "inbound", "outbound"):
        raise BadRequest("invalid_query", "direction must be inbound or outbound")
    if flt.purpose is not None:
        if flt.purpose not in services.config.purposes:
            raise BadRequest("invalid_query", "purpose is not one this service keeps for")
        flt = replace(flt, kept_at=services.clock())
    for bound in (flt.min_duration, flt.max_duration):
        if bound is not None and not (math.isfinite(bound) and bound >= 0):
            raise BadRequest("invalid_query", "a duration is a number of seconds, 0 or more")
    return flt


async def search(services: Services, actor: Actor, origin: Origin,
                 flt: recording_search.SearchFilter, cursor: str | None, limit: int,
                 sort: str = recording_search.DEFAULT_SORT) -> SearchPage:
    flt = _check_search(services, actor, flt, sort)
    position, backwards = decode_search_cursor(cursor, sort)
    try:
        async with services.database.read() as conn:
            found = await recording_search.search(conn, flt, position, limit + 1, sort,
                                                  backwards)
    except recording_search.TooManyIds as exc:
        raise BadRequest("too_many_matches", f"more than {recording_search.MATCHED_IDS} "
                         f"different {exc.field} values start with that: type more of "
                         f"it") from None
    more = len(found) > limit
    items = found[:limit]
    if backwards:
        items.reverse()

    def at(rec: catalog.Recording, back: bool) -> str:
        return encode_search_cursor(sort, recording_search.position_of(rec, sort), back)

    # Paging back, more before it means a previous page; paging on, a cursor came from one.
    next_cursor = at(items[-1], False) if items and (backwards or more) else None
    prev_cursor = at(items[0], True) if items and (more if backwards else cursor) else None
    filters = {k: (rfc3339(v) if isinstance(v, datetime) else v)
               for k, v in flt.given().items() if k != "kept_at"}
    await auditing.record(services, auditing.event(
        actor, origin, "search", "allowed",
        detail={"filter": filters, "sort": sort, "count": len(items)}))
    return SearchPage(items, next_cursor, prev_cursor)


async def count_matches(services: Services, actor: Actor,
                        flt: recording_search.SearchFilter) -> int:
    """How many match, to COUNT_CAP + 1 (more is shown as "more than COUNT_CAP"); part of
    the search already audited, so not audited again."""
    flt = _check_search(services, actor, flt, recording_search.DEFAULT_SORT)
    try:
        async with services.database.read() as conn:
            return await recording_search.count(conn, flt, COUNT_CAP + 1)
    except recording_search.TooManyIds:
        return 0


async def _agent_evaluated(services: Services, actor: Actor, rec: catalog.Recording) -> bool:
    if actor.agent_id is None or rec.agent_id != actor.agent_id:
        return False
    async with services.database.read() as conn:
        return await evaluation_store.exists_for(conn, rec.id, actor.agent_id)


async def authorize_audio(services: Services, actor: Actor, origin: Origin, action: str,
                          recording_id: str, purpose: str | None,
                          detail: Mapping[str, Any], clip: bool = False,
                          ) -> catalog.Recording:
    """Checks roles x purpose x active purposes x restriction; audits the outcome. An agent
    hears their own evaluated calls, or (``clip``: the caller checked the share and bounds
    the span) a clip shared with them."""
    rec = await _get(services, recording_id)
    error: ServiceError | None = None
    if rec is None:
        error = NotFound()
    elif rec.state != "active":
        error = Gone("purged", "the recording has been purged")
    elif is_agent_only(actor) and not clip and not await _agent_evaluated(services, actor, rec):
        error = Forbidden("not_your_call", "an agent hears only their own evaluated calls "
                                           "and the clips shared with them")
    elif not purpose:
        error = BadRequest("purpose_required",
                           "name the access purpose in the Access-Purpose header "
                           "or the purpose query parameter")
    else:
        states = policy.states_of(rec)
        try:
            policy.check_access(actor.roles, purpose, states, rec.restricted,
                                services.config.purposes, services.clock())
        except ServiceError as exc:
            error = exc
    if error is not None:
        raise await _deny(services, actor, origin, action, error, recording_id, purpose, detail)
    assert rec is not None
    await auditing.record(services, auditing.event(
        actor, origin, action, "allowed", recording_id=recording_id, purpose=purpose,
        detail=detail))
    return rec


async def record_failure(services: Services, actor: Actor, origin: Origin, action: str,
                         rec: catalog.Recording, purpose: str, error: Exception,
                         detail: Mapping[str, Any]) -> None:
    """An access logged as allowed that then failed (key, blob or integrity): the log
    says so, with the error's type, beside the entry that allowed it."""
    await auditing.record(services, auditing.event(
        actor, origin, action, "error", recording_id=rec.id, purpose=purpose,
        reason=type(error).__name__, detail=detail))


async def waveform_of(services: Services, actor: Actor, origin: Origin, recording_id: str,
                      purpose: str | None, points: int) -> tuple[catalog.Recording, float,
                                                                  list[int]]:
    """The recording's waveform in at most ``points`` levels (0-255), and the seconds each
    stands for: an access to the audio's shape, checked and audited as one to the audio."""
    rec = await authorize_audio(services, actor, origin, "waveform", recording_id, purpose,
                                {"points": points})
    async with services.database.read() as conn:
        sealed = await catalog.sealed_waveform(conn, rec.id)
    if sealed is None or rec.wrapped_dek is None or rec.key_version is None:
        raise NotFound("this recording has no waveform (its format is not decoded for one)")
    dek = await services.keyring.unwrap_fresh(rec.wrapped_dek, rec.key_version, rec.id)
    seconds, levels = waveform.open_sealed(dek, rec.id, sealed)
    shown = waveform.resampled(levels, points)
    return rec, seconds * len(levels) / max(1, len(shown)), shown


async def record_cut(services: Services, actor: Actor, origin: Origin,
                     rec: catalog.Recording, purpose: str, start: int, end: int,
                     sent: int) -> None:
    """A stream the client left before its end: the bytes it was sent of the range."""
    await auditing.record(services, auditing.event(
        actor, origin, "stream_cut", "allowed", recording_id=rec.id, purpose=purpose,
        detail={"requested": [start, end], "served": [start, start + sent - 1] if sent else None}))


@asynccontextmanager
async def open_reader(services: Services, rec: catalog.Recording,
                      ) -> AsyncIterator[DecryptingReader]:
    assert rec.wrapped_dek is not None and rec.key_version is not None and rec.blob_name
    dek = await services.keyring.unwrap_fresh(rec.wrapped_dek, rec.key_version, rec.id)
    async with DecryptingReader(services.blobs, rec.blob_name, dek, rec.id, rec.size_bytes,
                                verified=services.verified_headers) as reader:
        yield reader


# --- playback links --------------------------------------------------------------------


@dataclass(frozen=True)
class PlaybackLink:
    recording_id: str
    purpose: str
    actor: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, b"playback-link\x00" + payload, hashlib.sha256).digest()


async def create_link(services: Services, actor: Actor, origin: Origin, recording_id: str,
                      purpose: str | None, session_id_hash: str | None = None,
                      renews: bool = False) -> tuple[str, datetime]:
    """A signed link; one made in a person's session lives no longer than that session
    (sign-out, a password reset or disabling the account ends it). ``renews``: a player
    replacing its expired link to go on where it was (the log says so)."""
    expires_at = services.clock() + timedelta(seconds=services.config.link_ttl_seconds)
    detail: dict[str, Any] = {"expires_at": rfc3339(expires_at)}
    if renews:
        detail["renewal"] = True
    rec = await authorize_audio(services, actor, origin, "playback_link", recording_id,
                                purpose, detail)
    # Bound to the audio as it is now: a redaction (new audio) ends the link.
    claims: dict[str, Any] = {"r": recording_id, "p": purpose, "a": actor.name,
                              "e": int(expires_at.timestamp()), "h": rec.sha256[:16]}
    if session_id_hash is not None:
        claims["s"] = session_id_hash
    payload = json.dumps(claims, separators=(",", ":")).encode()
    token = f"{_b64(payload)}.{_b64(_sign(services.link_secret, payload))}"
    return token, expires_at


async def resolve_link(services: Services, token: str, origin: Origin,
                       detail: Mapping[str, Any]) -> tuple[catalog.Recording, Actor, str]:
    """The link's caller, re-authorized now: a link dies with a purge, a restriction, an
    expired or withdrawn purpose, or the caller's revoked token."""
    try:
        encoded, signature = token.split(".")
        payload = _unb64(encoded)
        valid = hmac.compare_digest(_unb64(signature), _sign(services.link_secret, payload))
        claims = json.loads(payload) if valid else None
    except (ValueError, TypeError):
        claims = None
    if not isinstance(claims, dict):
        raise NotFound("no such playback link")
    link = PlaybackLink(str(claims["r"]), str(claims["p"]), str(claims["a"]),
                        datetime.fromtimestamp(int(claims["e"]), services.clock().tzinfo))
    actor = (await sessions.person_of(services, str(claims["s"])) if "s" in claims
             else await actor_by_name(services.database, link.actor, services.clock()))
    if actor is None:
        raise await _deny(services, Actor(link.actor, frozenset()), origin, "stream",
                          Forbidden("link_revoked",
                                    "the token that made this link has been revoked"),
                          link.recording_id, link.purpose, detail)
    if services.clock() >= link.expires_at:
        raise await _deny(services, actor, origin, "stream",
                          Forbidden("link_expired", "this playback link has expired"),
                          link.recording_id, link.purpose, detail)
    rec = await authorize_audio(services, actor, origin, "stream", link.recording_id,
                                link.purpose, detail)
    if claims.get("h", rec.sha256[:16]) != rec.sha256[:16]:
        raise await _deny(services, actor, origin, "stream",
                          Gone("link_superseded", "the recording was redacted after this "
                                                  "link was made: make a new one"),
                          link.recording_id, link.purpose, detail)
    return rec, actor, link.purpose
