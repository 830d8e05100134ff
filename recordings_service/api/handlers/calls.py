"""Call records and coverage: parse, call calls.py, render JSON."""

from __future__ import annotations

from aiohttp import web

from recordings_service import calls, freeswitch_cdr
from recordings_service.api.handlers.common import (
    caller,
    json_response,
    page_limit,
    parse_json,
    query_time,
    raw_body,
)
from recordings_service.appkeys import origin, services
from recordings_service.fields import required_text
from storage.call_store import Period
from storage.limits import IDENTIFIER


async def post_calls(request: web.Request) -> web.Response:
    body = parse_json(await raw_body(request, calls.MAX_BODY), "invalid_call_record",
                      "the body")
    accepted = await calls.receive(services(request), caller(request), origin(request),
                                   calls.parse_batch(body))
    return _answer(accepted)


async def post_freeswitch_cdr(request: web.Request) -> web.Response:
    svc = services(request)
    raw = freeswitch_cdr.decode_body(await raw_body(request, calls.MAX_BODY),
                                     request.content_type)
    record = freeswitch_cdr.to_record(
        parse_json(raw, "invalid_call_record", "the FreeSWITCH CDR"),
        svc.config.freeswitch_call_id_variable, svc.config.freeswitch_agent_variable,
        svc.config.freeswitch_queue_variable, _query_id(request, "source"))
    accepted = await calls.receive(svc, caller(request), origin(request), [record])
    return _answer(accepted)


def _answer(accepted: list[calls.Accepted]) -> web.Response:
    return json_response({"items": [
        {"source": a.source, "call_id": a.call_id, "outcome": a.outcome, "status": a.status}
        for a in accepted]})


def _query_id(request: web.Request, name: str) -> str | None:
    """An id filter: absent, or a non-blank id (``?source=`` is a mistake, not "any")."""
    value = request.query.get(name)
    return None if value is None else required_text(value, name, IDENTIFIER, "invalid_query")


def _period(request: web.Request) -> Period:
    return calls.period(
        services(request), query_time(request, "from"), query_time(request, "to"),
        _query_id(request, "source"), _query_id(request, "queue"))


async def list_calls(request: web.Request) -> web.Response:
    q = request.query
    items, next_cursor = await calls.listing(
        services(request), caller(request), origin(request), _period(request),
        q.get("status"), _query_id(request, "call_id"),
        q.get("cursor"), page_limit(request))
    return json_response({"items": items, "next_cursor": next_cursor})


async def get_coverage(request: web.Request) -> web.Response:
    return json_response(await calls.coverage(services(request), _period(request)))
