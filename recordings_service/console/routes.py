"""The console's pages: one table, each page's roles declared once (``routing.Guard``),
enforced by the same middleware as the API's."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import aiohttp_jinja2
import jinja2
from aiohttp import web

from recordings_service import audit_reading
from recordings_service.console import pages
from recordings_service.routing import Guard, Handler, add_route

_READERS = frozenset({"supervisor", "compliance"})
_COMPLIANCE = frozenset({"compliance"})
_AUDIT = frozenset({"auditor", "compliance"})
_ANYONE = frozenset({"ingest", "supervisor", "compliance", "auditor", "agent"})
_WITH_AGENTS = frozenset({"supervisor", "compliance", "agent"})
_AGENT = frozenset({"agent"})
_PUBLIC: frozenset[str] = frozenset()

STATIC = Path(__file__).parent / "static"
_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}

PAGES: tuple[tuple[str, Handler, frozenset[str], str], ...] = (
    ("/", pages.home, _ANYONE, "console"),
    ("/sign-in", pages.sign_in, _PUBLIC, "sign_in"),
    ("/recordings", pages.recordings, _READERS, "search"),
    ("/recordings/{recording_id}", pages.recording, _READERS, "view_metadata"),
    ("/recordings/{recording_id}/listenings", pages.who_heard, _AUDIT, "audit_read"),
    ("/compliance", pages.compliance, _COMPLIANCE, "legal_hold_read"),
    ("/subjects", pages.subject_lookup, _COMPLIANCE, "subject_read"),
    ("/subjects/{customer_id}", pages.subject, _COMPLIANCE, "subject_read"),
    ("/subject-requests/{request_id}", pages.subject_request, _COMPLIANCE,
     "subject_request_read"),
    ("/purge-runs/{run_id}", pages.purge_run, _COMPLIANCE, "purge_run"),
    ("/legal-holds/{hold_id}", pages.legal_hold, _COMPLIANCE, "legal_hold_read"),
    ("/agents/{agent_id}", pages.agent, _READERS, "evaluations_read"),
    ("/my-evaluations", pages.my_evaluations, _AGENT, "evaluations_read"),
    ("/evaluations/{evaluation_id}", pages.evaluation, _WITH_AGENTS, "evaluation_read"),
    ("/collections", pages.collections, _WITH_AGENTS, "collection_read"),
    ("/collections/{collection_id}", pages.collection, _WITH_AGENTS, "collection_read"),
    ("/coverage", pages.coverage, _READERS, "calls_read"),
    ("/audit", pages.audit, _AUDIT, "audit_read"),
    ("/audit.csv", pages.audit_csv, _AUDIT, "audit_export"),
)


def setup(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.PackageLoader("recordings_service.console", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined)
    # One path segment: Jinja's urlencode leaves "/" as it is, which would split an id.
    env.filters["segment"] = lambda value: quote(str(value), safe="")
    env.filters["request_state"] = _request_state
    env.filters["outcome_words"] = lambda word: _WORDS.get(str(word), str(word))
    app[pages.ACCESS_COUNTS] = audit_reading.AccessCounts()
    for path, handler, roles, action in PAGES:
        add_route(app, "GET", path, handler, Guard("console", roles, action))
    # Stylesheet, script and icon: public, and never anything personal. Served from
    # memory (a few kilobytes, read once): a file response left its file open when the
    # browser dropped the request (seen as a ResourceWarning in the browser tests).
    assets = {p.name: p.read_bytes() for p in STATIC.iterdir() if p.suffix in _TYPES}
    for method in ("GET", "HEAD"):
        add_route(app, method, "/static/{name}", _asset_handler(assets),
                  Guard("console", _PUBLIC, "static"))


# What became of a recording, and why, as a person says it.
_WORDS = {"purged": "erased", "legal_hold": "under a legal hold",
          "legal_obligation": "the law requires keeping it"}
_STATES = {"open": "Open", "completed": "Completed",
           "partially_completed": "Partially completed", "refused": "Refused"}


def _request_state(request_json: dict[str, object]) -> str:
    """A request's state in words (``subjects.request_json``): overdue first."""
    return "Overdue" if request_json["overdue"] else _STATES[str(request_json["state"])]


def _asset_handler(assets: dict[str, bytes]) -> Handler:
    async def asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        body = assets.get(name)
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(body=body, content_type=_TYPES[Path(name).suffix])

    return asset
