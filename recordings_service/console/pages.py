"""The console's pages. Each reads through the same domain functions as the API (so a
page is audited as the API call would be, and never re-implements the policy) and renders
a template; changes are made by the page's script through the JSON API itself."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp_jinja2
from aiohttp import web

from recordings_service import (
    access,
    audit_reading,
    calls,
    evaluations,
    fields,
    holds,
    listenings,
    retention,
    subjects,
    training,
)
from recordings_service.api.problems import Problem
from recordings_service.appkeys import ACTOR, SESSION, origin, services
from recordings_service.auth import Actor, is_agent_only
from recordings_service.client_address import scheme
from recordings_service.console import charts
from recordings_service.errors import BadRequest
from recordings_service.services import Services
from recordings_service.times import parse_time
from storage import audit_log, catalog, recording_search, redaction_store
from storage.limits import IDENTIFIER

# The browser's time zone, written by the console's script (an IANA name).
TZ_COOKIE = "rs_tz"
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-]{1,32}(/[A-Za-z0-9_+\-]{1,32}){0,2}")
PAGE_SIZE = 25
ACCESS_COUNTS = web.AppKey("access_counts", audit_reading.AccessCounts)
# Counts a page shows are exact up to this and "at least" past it: counting further would
# cost in proportion to the catalog, not to what the page shows.
COUNT_CAP = retention.COUNT_CAP
# Recordings a purge run's page lists of each kind (the API gives them all).
RUN_ROWS = 500
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _actor(request: web.Request) -> Actor:
    return request[ACTOR]


def zone_of(request: web.Request) -> ZoneInfo:
    name = request.cookies.get(TZ_COOKIE, "UTC")
    if _ZONE_NAME.fullmatch(name):
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    """A time as people read it, in ISO order: ``2026-11-25 14:03``."""
    return "" if value is None else value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _local_seconds(value: datetime | None, zone: ZoneInfo) -> str:
    """To the second, for the audit log: ``2026-11-25 14:03:07``."""
    return "" if value is None else value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else \
        f"{rest // 60}:{rest % 60:02d}"


def _span_time(ms: int) -> str:
    """A position in a call as m:ss, with tenths when it falls between seconds."""
    minutes, rest = divmod(ms, 60_000)
    return f"{minutes}:{rest // 1000:02d}" + (f".{rest % 1000 // 100}" if rest % 1000 else "")


def retention_words(rec: catalog.Recording, now: datetime, zone: ZoneInfo) -> str:
    """When the recording goes, as a person asks it: "Purged in 23 days (2027-01-02)",
    or "Overdue since 2026-12-01: under a legal hold (LIT-1)" for one that is due and
    kept (what keeps it is said)."""
    if rec.state != "active":
        return ""
    if rec.purge_at is None:
        return "Not scheduled"
    when = _local(rec.purge_at, zone)
    if rec.purge_at > now:
        left = rec.purge_at - now
        span = (f"{left.days} day{'' if left.days == 1 else 's'}" if left.days
                else f"{left.seconds // 3600} hours" if left.seconds >= 7200 else "an hour")
        return f"Purged in {span} ({when})"
    kept = [f"under a legal hold ({', '.join(case for _, case in rec.legal_holds)})"
            if rec.legal_holds else "", "restricted" if rec.restricted else ""]
    why = "; ".join(k for k in kept if k) or "the next purge run takes it"
    return f"Overdue since {when}: {why}"


def _day_bound(text: str | None, zone: ZoneInfo, name: str, end: bool) -> datetime | None:
    """A date field's day in the reader's zone, as the UTC time its day starts (or, for
    the end of a range, the next day starts)."""
    if not text:
        return None
    invalid = BadRequest("invalid_query", f"{name} must be a date such as 2026-11-24")
    if not _DATE.fullmatch(text):
        raise invalid
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise invalid from None
    # Far from the ends of what datetime holds, in any zone, with the day after.
    if not 1900 <= day.year <= 9000:
        raise invalid
    if end:
        day += timedelta(days=1)
    return datetime.combine(day, time(), zone).astimezone(UTC)


def _render(template: str, request: web.Request, context: dict[str, Any],
            status: int = 200) -> web.Response:
    """``template`` with ``context`` and what every page uses: who is signed in, the
    CSRF token for the page's script, and the reader's zone."""
    actor: Actor | None = request.get(ACTOR)
    session = request.get(SESSION)
    zone = zone_of(request)
    common = {
        "actor": actor,
        "roles": actor.roles if actor else frozenset(),
        # Which parts of the console the nav offers (the routes' guards decide access).
        "can_search": bool(actor and actor.roles & {"supervisor", "compliance"}),
        "can_comply": bool(actor and "compliance" in actor.roles),
        "can_audit": bool(actor and actor.roles & {"auditor", "compliance"}),
        "can_train": bool(actor and actor.roles & {"supervisor", "compliance", "agent"}),
        "is_agent": bool(actor and is_agent_only(actor)),
        "csrf_token": session.csrf_token if session is not None else "",
        "zone": zone.key,
        "local": lambda value: _local(value, zone),
        "duration": _duration,
        "span_time": _span_time,
        "path": request.path,
    }
    return aiohttp_jinja2.render_template(template, request, common | context, status=status)


def error_page(request: web.Request, found: Problem) -> web.Response:
    headers = {k: v for k, v in found.headers.items() if k in ("Retry-After", "Allow")}
    response = _render("error.html", request, {"problem": found}, status=found.status)
    response.headers.update(headers)
    return response


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def sign_in_redirect(request: web.Request) -> web.Response:
    target = request.path_qs if request.method == "GET" else "/"
    return _see_other("/sign-in?" + urlencode({"next": target}))


# What a browser's URL parser drops before it reads a URL (WHATWG URL: leading and
# trailing C0 controls and spaces, and every tab, LF and CR anywhere).
_EDGES = "".join(map(chr, range(0x21)))
_DROPPED = re.compile(r"[\t\n\r]")


def safe_next(value: str | None) -> str:
    """Where to go after signing in: only a path on this site. The value is read as a
    browser reads it (``/\t/evil`` is ``//evil``, and ``\\`` is ``/`` in an http URL), and
    what is returned is that reading, so the browser cannot read it otherwise."""
    cleaned = _DROPPED.sub("", (value or "").strip(_EDGES)).replace("\\", "/")
    if not cleaned.startswith("/") or cleaned.startswith("//"):
        return "/"
    parts = urlsplit(cleaned)
    if parts.scheme or parts.netloc:
        return "/"
    return cleaned


# --- pages ------------------------------------------------------------------------------


async def home(request: web.Request) -> web.StreamResponse:
    roles = _actor(request).roles
    if roles & {"supervisor", "compliance"}:
        return _see_other("/recordings")
    if "auditor" in roles:
        return _see_other("/audit")
    if "agent" in roles:
        return _see_other("/my-evaluations")
    return _render("home.html", request, {})


async def sign_in(request: web.Request) -> web.Response:
    return _render("sign_in.html", request, {
        "next": safe_next(request.query.get("next")),
        "sso": bool(services(request).config.oidc_issuer),
    })


_ID_FIELDS = ("agent_id", "queue", "customer_id", "call_id")
_SEARCH_FORM = (*_ID_FIELDS, "phone_number", "direction", "purpose", "min_minutes",
                "max_minutes", "from", "to", "sort")
_SORT_WORDS = {"-started_at": "Newest call first", "started_at": "Oldest call first",
               "-duration": "Longest first", "duration": "Shortest first",
               "agent": "By agent, A to Z", "-agent": "By agent, Z to A"}
LAST_SEARCH_COOKIE = "rs_search"


def _minutes(text: str, name: str) -> float | None:
    if not text:
        return None
    try:
        minutes = float(text)
    except ValueError:
        minutes = -1.0
    if not 0 <= minutes <= 10_000:
        raise BadRequest("invalid_query", f"{name} must be a number of minutes")
    return minutes * 60


def _search_tag(request: web.Request) -> str:
    """Binds the remembered search to this sign-in: after signing out, or for the next
    person at the same browser, it is not there."""
    session = request.get(SESSION)
    secret = session.csrf_token if session is not None else ""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def _remembered(request: web.Request) -> str | None:
    tag, _, query = request.cookies.get(LAST_SEARCH_COOKIE, "").partition(":")
    return query if query and hmac.compare_digest(tag, _search_tag(request)) else None


async def recordings(request: web.Request) -> web.StreamResponse:
    q = request.query
    if not q and (last := _remembered(request)):
        return _see_other("/recordings?" + urlencode(parse_qsl(last)))
    svc, actor, zone = services(request), _actor(request), zone_of(request)
    form = {name: q.get(name, "").strip() for name in _SEARCH_FORM}
    form["sort"] = form["sort"] if form["sort"] in _SORT_WORDS else "-started_at"
    context: dict[str, Any] = {
        "form": form, "rows": [], "prev": None, "more": None, "count": None, "error": None,
        "sorts": _SORT_WORDS, "purposes": sorted(svc.config.purposes),
        "compliance": "compliance" in actor.roles}
    asked = {k: v for k, v in form.items() if v and not (k == "sort" and v == "-started_at")}
    try:
        flt = recording_search.SearchFilter(
            agent_id=form["agent_id"] or None, queue=form["queue"] or None,
            customer_id=form["customer_id"] or None, call_id=form["call_id"] or None,
            prefix=True,
            phone_number=(form["phone_number"] or None) if context["compliance"] else None,
            direction=form["direction"] or None, purpose=form["purpose"] or None,
            min_duration=_minutes(form["min_minutes"], "shortest"),
            max_duration=_minutes(form["max_minutes"], "longest"),
            started_after=_day_bound(form["from"], zone, "from", end=False),
            started_before=_day_bound(form["to"], zone, "to", end=True), state="active")
        found = await access.search(svc, actor, origin(request), flt, q.get("cursor"),
                                    PAGE_SIZE, form["sort"])
        matches = await access.count_matches(svc, actor, flt)
    except BadRequest as exc:
        context["error"] = exc.detail
        return _remember(request, _render("recordings.html", request, context, 400), asked)
    context["rows"] = [{"rec": rec, "allowed": access.allowed_purposes(svc, actor, rec),
                        "refusals": access.refusals(svc, actor, rec)} for rec in found.items]
    # Where this page starts in the count, carried in the links (only for the caption).
    first = int(q["first"]) if re.fullmatch(r"[1-9][0-9]{0,6}", q.get("first", "")) else 1
    if found.prev_cursor is None:
        first = 1
    context["count"] = {
        "first": first, "last": first + len(found.items) - 1,
        "of": f"more than {access.COUNT_CAP:,}" if matches > access.COUNT_CAP
        else f"{matches:,}"}
    for key, cursor, start in (("more", found.next_cursor, first + len(found.items)),
                               ("prev", found.prev_cursor, max(1, first - PAGE_SIZE))):
        if cursor is not None:
            context[key] = "/recordings?" + urlencode(
                {**asked, "cursor": cursor, "first": start})
    return _remember(request, _render("recordings.html", request, context), asked)


def _remember(request: web.Request, response: web.Response,
              asked: dict[str, str]) -> web.Response:
    # Kept for the browser session only; an empty search forgets it.
    if asked:
        response.set_cookie(LAST_SEARCH_COOKIE, f"{_search_tag(request)}:{urlencode(asked)}",
                            httponly=True, samesite="Strict", path="/recordings",
                            secure=scheme(request) == "https")
    elif LAST_SEARCH_COOKIE in request.cookies:
        response.del_cookie(LAST_SEARCH_COOKIE, path="/recordings")
    return response


async def recording(request: web.Request) -> web.Response:
    svc, actor = services(request), _actor(request)
    rec = await access.view_metadata(svc, actor, origin(request),
                                     request.match_info["recording_id"])
    accesses: list[dict[str, Any]] = []
    if actor.roles & {"compliance", "auditor"}:
        accesses, _, _ = await audit_reading.read_entries(
            svc, actor, origin(request), audit_log.AuditFilter(recording_id=rec.id),
            {"recording_id": rec.id}, None, 100)
    now = svc.clock()
    allowed = access.allowed_purposes(svc, actor, rec)
    scored = await evaluations.of_recording(svc, actor, origin(request), rec.id) \
        if evaluations.PURPOSE in allowed else []
    library: list[Any] = []
    if training.PURPOSE in allowed and rec.content_type == "audio/wav":
        library, _ = await training.list_visible(svc, actor, None, 50)
    return _render("recording.html", request, {
        "library": library,
        "rec": rec, "now": now, "retention": retention_words(rec, now, zone_of(request)),
        "allowed": allowed, "evaluations": scored,
        "forms": svc.config.quality_forms if evaluations.PURPOSE in allowed else {},
        "refusals": access.refusals(svc, actor, rec),
        "legs": await access.legs_of(svc, rec),
        "redactions": await _redactions(svc, rec.id),
        "accesses": [e for e in accesses if e["action"] != "audit_read"][-50:],
        "compliance": "compliance" in actor.roles,
    })


async def _redactions(svc: Services, recording_id: str) -> list[dict[str, Any]]:
    async with svc.database.read() as conn:
        return await redaction_store.of_recording(conn, recording_id)


async def compliance(request: web.Request) -> web.Response:
    svc = services(request)
    now = svc.clock()
    zone = zone_of(request)
    held, _ = await holds.list_page(svc, None, 200)
    requests, _ = await subjects.list_requests(svc, False, None, 500)
    register = sorted(
        (subjects.request_json(r, now) | {"row": r} for r in requests),
        key=lambda j: (not j["overdue"], j["row"].completed_at is not None,
                       j["row"].due_at))
    runs, _ = await retention.list_runs(svc, None, 10)
    due_now, next_purge = await retention.preview(svc)
    month_starts = charts.month_starts(now.astimezone(zone), 13)
    async with svc.database.read() as conn:
        due = await catalog.count_falling_due(conn, month_starts, COUNT_CAP)
    since = datetime.combine(now.date() - timedelta(days=29), time(), UTC)
    per_day = await request.app[ACCESS_COUNTS].since(svc, since)
    return _render("compliance.html", request, {
        "holds": [h for h in held if h.released_at is None],
        "released": sorted((h for h in held if h.released_at is not None),
                           key=lambda h: h.released_at or h.placed_at, reverse=True)[:20],
        "register": register, "runs": runs, "next_purge": next_purge,
        "due_count": due_now,
        "due_now": f"at least {due_now:,}" if due_now >= COUNT_CAP else f"{due_now:,}",
        "due_chart": charts.bars([(m.astimezone(zone).strftime("%Y-%m"), n)
                                  for m, n in zip(month_starts, due, strict=False)]),
        "due_total": (f"at least {sum(due):,}" if COUNT_CAP in due else f"{sum(due):,}"),
        "access_chart": charts.stacked_days(per_day, since.date(), 30),
        "request_types": subjects.REQUEST_TYPES,
    })


async def purge_run(request: web.Request) -> web.Response:
    """One run: each recording it purged (by call date, with its signed receipt) and each
    it skipped and why; the first RUN_ROWS of each."""
    svc = services(request)
    run = await retention.get_run(svc, request.match_info["run_id"])
    shown = [*run["purged"][:RUN_ROWS], *(s["id"] for s in run["skipped"][:RUN_ROWS])]
    calls = await subjects.recordings_by_id(svc, [str(i) for i in shown])
    return _render("purge_run.html", request, {
        "run": run, "calls": calls, "rows": RUN_ROWS,
        "purged": [calls.get(str(i)) or i for i in run["purged"][:RUN_ROWS]],
        "skipped": [(calls.get(str(s["id"])) or s["id"], s["reason"])
                    for s in run["skipped"][:RUN_ROWS]],
    })


async def legal_hold(request: web.Request) -> web.Response:
    """One hold: its case, who placed it and why, whether and how it was released, and the
    recordings it covers by call date (the first RUN_ROWS)."""
    svc = services(request)
    hold = await holds.get(svc, request.match_info["hold_id"])
    calls = await subjects.recordings_by_id(svc, list(hold.recording_ids[:RUN_ROWS]))
    covered = sorted(calls.values(), key=lambda r: r.started_at, reverse=True)
    return _render("legal_hold.html", request, {
        "hold": hold, "covered": covered, "rows": RUN_ROWS,
        "missing": len(hold.recording_ids[:RUN_ROWS]) - len(covered)})


async def who_heard(request: web.Request) -> web.Response:
    """Each listening of a call: who, for what, when, and which parts they were sent."""
    rec, found = await listenings.of_recording(services(request), _actor(request),
                                               origin(request), request.match_info["recording_id"])
    rows = [{"listening": x, "spans": listenings.as_seconds(rec, x)} for x in found]
    return _render("listenings.html", request, {
        "rec": rec, "rows": rows, "entries": listenings.ENTRIES,
        "seconds": lambda value: _local_seconds(value, zone_of(request))})


TREND_WEEKS = 12


async def agent(request: web.Request) -> web.Response:
    """An agent's evaluations: the last TREND_WEEKS weeks per form as a chart of the weekly
    average, and each evaluation."""
    svc, zone = services(request), zone_of(request)
    agent_id = fields.required_text(request.match_info["agent_id"], "agent_id", IDENTIFIER,
                                    "invalid_query")
    today = svc.clock().astimezone(zone).date()
    monday = today - timedelta(days=today.weekday() + 7 * (TREND_WEEKS - 1))
    since = datetime.combine(monday, time(), zone).astimezone(UTC)
    found, _, means = await evaluations.of_agent(svc, _actor(request), origin(request),
                                                 agent_id, since, None, None, None, 500)
    weeks = [monday + timedelta(weeks=i) for i in range(TREND_WEEKS)]
    charts_by_form = {}
    for form in sorted(means):
        scores: dict[date, list[float]] = {}
        for e in found:
            if e.form == form:
                day = e.created_at.astimezone(zone).date()
                scores.setdefault(day - timedelta(days=day.weekday()), []).append(e.score)
        charts_by_form[form] = charts.bars(
            [(w.strftime("%d.%m."), round(sum(scores[w]) / len(scores[w])) if w in scores
              else 0) for w in weeks], top=100)
    return _render("agent.html", request, {
        "agent_id": agent_id, "evaluations": found, "means": means,
        "forms": svc.config.quality_forms, "charts": charts_by_form, "weeks": TREND_WEEKS})


async def subject_lookup(request: web.Request) -> web.StreamResponse:
    customer_id = request.query.get("customer_id", "").strip()
    if not customer_id:
        raise BadRequest("invalid_query", "give a customer id")
    return _see_other("/subjects/" + quote(customer_id, safe=""))


async def subject(request: web.Request) -> web.Response:
    svc, actor = services(request), _actor(request)
    customer_id = fields.customer_id(request.match_info["customer_id"])
    found = await access.search(svc, actor, origin(request),
                                recording_search.SearchFilter(customer_id=customer_id), None, 200)
    requests, _ = await subjects.list_requests(svc, False, None, 500, customer_id)
    now = svc.clock()
    return _render("subject.html", request, {
        "customer_id": customer_id, "quoted_id": quote(customer_id, safe=""),
        "recordings": found.items, "more": found.next_cursor is not None,
        "requests": [subjects.request_json(r, now) | {"row": r} for r in requests],
    })


async def subject_request(request: web.Request) -> web.Response:
    """One request: what was asked, when it arrived and was answered, and what became of
    each recording it covered (with the call's date, not only its id)."""
    svc = services(request)
    found = await subjects.get_request(svc, request.match_info["request_id"])
    results = (found.outcome or {}).get("results") or []
    calls = await subjects.recordings_by_id(svc, [str(r.get("id")) for r in results])
    return _render("subject_request.html", request, {
        "req": subjects.request_json(found, svc.clock()) | {"row": found},
        "results": [r | {"rec": calls.get(str(r.get("id")))} for r in results],
        "parse_time": lambda value: parse_time(value, "until"),
    })


_AUDIT_FIELDS = ("actor", "action", "recording_id", "call_id", "purpose", "outcome")


async def _audit_filter(request: web.Request, zone: ZoneInfo,
                        ) -> tuple[dict[str, str], audit_log.AuditFilter | None]:
    """The audit page's form and the filter it asks for; None when it names a call id no
    recording has (nothing can match)."""
    q = request.query
    form = {name: q.get(name, "").strip() for name in (*_AUDIT_FIELDS, "from", "to")}
    recording_id = form["recording_id"] or None
    if form["call_id"]:
        # A person knows the call by its id; the log names the recording.
        async with services(request).database.read() as conn:
            of_call = [i for i, _ in await catalog.legs_of_call(conn, form["call_id"])]
        if recording_id:
            of_call = [i for i in of_call if i == recording_id]
        if not of_call:
            return form, None
        recording_ids: tuple[str, ...] | None = tuple(of_call)
        recording_id = None
    else:
        recording_ids = None
    return form, audit_log.AuditFilter(
        actor=form["actor"] or None, action=form["action"] or None,
        recording_id=recording_id, recording_ids=recording_ids, purpose=form["purpose"] or None,
        outcome=form["outcome"] or None,
        since=_day_bound(form["from"], zone, "from", end=False),
        until=_day_bound(form["to"], zone, "to", end=True))


async def audit(request: web.Request) -> web.Response:
    svc, actor, zone = services(request), _actor(request), zone_of(request)
    q = request.query
    form, flt = await _audit_filter(request, zone)
    oldest_first = q.get("order") == "oldest"
    asked = {k: v for k, v in form.items() if v}
    entries, next_cursor, archived = await audit_reading.read_entries(
        svc, actor, origin(request), flt or audit_log.NOTHING, asked, q.get("cursor"), 50,
        newest_first=not oldest_first)
    report = None
    if q.get("verify") in ("now", "full"):
        report = await audit_reading.verify(svc, actor, origin(request),
                                            full=q.get("verify") == "full")
    verified = await audit_reading.verification_state(svc)
    latest = await audit_reading.checkpoints(svc, actor, origin(request), 1)
    order = {"order": "oldest"} if oldest_first else {}
    more = None if next_cursor is None else "/audit?" + urlencode(
        {**asked, **order, "cursor": next_cursor})
    now = svc.clock()
    return _render("audit.html", request, {
        "form": form, "entries": entries, "more": more, "report": report,
        "unknown_call": flt is None, "oldest_first": oldest_first,
        "toggle": "/audit?" + urlencode({**asked, **({} if oldest_first
                                                   else {"order": "oldest"})}),
        "csv": "/audit.csv?" + urlencode(asked),
        "actions": audit_reading.ACTIONS,
        "verified": verified, "archived": archived,
        "checkpoint": latest[0] if latest else None, "now": now,
        "age": (now - latest[0].signed_at) if latest else None,
        "outcomes": audit_reading.OUTCOMES,
        "parse_time": lambda value: parse_time(value, "at"),
        "seconds": lambda value: _local_seconds(parse_time(value, "at"), zone),
    })


async def audit_csv(request: web.Request) -> web.StreamResponse:
    """The filtered view as CSV (``audit_reading.csv_chunks``); the export is itself an
    audit entry, with its filter."""
    svc, actor, zone = services(request), _actor(request), zone_of(request)
    form, flt = await _audit_filter(request, zone)
    await audit_reading.record_export(svc, actor, origin(request),
                                      {k: v for k, v in form.items() if v})
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": 'attachment; filename="audit-log.csv"'})
    await response.prepare(request)
    async for chunk in audit_reading.csv_chunks(svc, flt):
        await response.write(chunk)
    await response.write_eof()
    return response


async def my_evaluations(request: web.Request) -> web.Response:
    """An agent's own evaluations, the newest first, each to acknowledge or dispute."""
    svc, actor = services(request), _actor(request)
    found, _, means = await evaluations.of_agent(svc, actor, origin(request),
                                                 actor.agent_id or "", None, None, None,
                                                 None, 100)
    return _render("my_evaluations.html", request, {
        "evaluations": found, "means": means, "forms": svc.config.quality_forms})


async def evaluation(request: web.Request) -> web.Response:
    """One evaluation: its answers, every version and response, and what the reader may
    do next (the agent: acknowledge or dispute; a reviewer: revise or uphold)."""
    svc, actor = services(request), _actor(request)
    found, steps = await evaluations.one(svc, actor, origin(request),
                                         request.match_info["evaluation_id"])
    agent = is_agent_only(actor)
    responses = [kind for kind, (_, after) in (
        evaluations.AGENT_RESPONSES if agent else evaluations.REVIEWER_RESPONSES).items()
        if found.status in after]
    forms = svc.config.quality_forms
    return _render("evaluation.html", request, {
        "e": found, "history": steps, "responses": responses,
        "form": forms.get(found.form), "reviewer": not agent})


async def collections(request: web.Request) -> web.Response:
    svc, actor = services(request), _actor(request)
    found, _ = await training.list_visible(svc, actor, None, 200)
    return _render("collections.html", request, {
        "collections": found, "reviewer": not is_agent_only(actor)})


async def collection(request: web.Request) -> web.Response:
    """A collection's clips, each with its player or the reason it no longer plays."""
    svc, actor = services(request), _actor(request)
    found, clips, agents = await training.read(svc, actor, origin(request),
                                               request.match_info["collection_id"])
    return _render("collection.html", request, {
        "c": found, "clips": clips, "agents": agents, "reviewer": not is_agent_only(actor)})


COVERAGE_DAYS = 14
COVERAGE_ROWS = 50
_GAPS = ("missing", "partial", "short", "unmatched")


async def coverage(request: web.Request) -> web.Response:
    """Coverage per UTC day and PBX (a chart each), and the calls not recorded in full."""
    svc, actor = services(request), _actor(request)
    today = svc.clock().astimezone(UTC).date()
    first = today - timedelta(days=COVERAGE_DAYS - 1)
    source = request.query.get("source") or None
    queue = request.query.get("queue") or None
    for name, value in (("source", source), ("queue", queue)):
        if value is not None:
            fields.required_text(value, name, IDENTIFIER, "invalid_query")
    where = calls.period(svc, datetime.combine(first, time(), UTC),
                         datetime.combine(today + timedelta(days=1), time(), UTC),
                         source, queue)
    report = await calls.coverage(svc, where)
    per_source: dict[str, dict[tuple[date, str], int]] = {}
    for day in report["days"]:
        counts = per_source.setdefault(day["source"] or "no call record", {})
        for status in ("recorded", *_GAPS):
            if day["counts"][status]:
                counts[(date.fromisoformat(day["date"]), status)] = day["counts"][status]
    gaps = {}
    for status in _GAPS:
        gaps[status], _ = await calls.listing(svc, actor, origin(request), where, status,
                                              None, None, COVERAGE_ROWS)
    return _render("coverage.html", request, {
        "report": report, "source": source or "", "queue": queue or "",
        "days": COVERAGE_DAYS, "gaps": gaps,
        "charts": {name: charts.stacked_days(counts, first, COVERAGE_DAYS)
                   for name, counts in sorted(per_source.items())}})
