"""Every search, page, count and job query that runs on a large catalog is served by an
index: its plan, as the database itself gives it, names one and scans no whole table.

The queries are the real ones: each storage function runs against a seeded catalog while
a listener captures the statements it sends, and the database explains each of them.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from recordings_service.config import Config
from recordings_service.services import open_services
from storage import (
    audit_archive,
    audit_log,
    call_store,
    catalog,
    collection_store,
    evaluation_store,
    moment_store,
    recording_search,
    retention_store,
    subject_store,
)
from storage.database import Conn, Database
from tests import catalog_seed as seed
from tests.conftest import FrozenClock

SEEDED = 20_000
# The tables that grow with calls, accesses or time.
BIG_TABLES = ("recordings", "recording_purposes", "audit_entries", "audit_checkpoints",
              "audit_verifications", "subject_requests", "evaluations", "moments",
              "evaluation_history", "collections", "collection_clips", "collection_shares",
              "call_records")
DAY = seed.started_of(3 * seed.CALLS_PER_DAY // 2)
DAY_START = DAY.replace(hour=0, minute=0, second=0, microsecond=0)
NEWEST = seed.started_of(0)


_search = recording_search.search


def _calls_day(source: str | None = None, queue: str | None = None) -> call_store.Period:
    return call_store.Period(DAY_START, DAY_START + timedelta(days=1), source, queue)


def _flt(**kw: Any) -> catalog.SearchFilter:
    return recording_search.SearchFilter(**kw)


def _day(**kw: Any) -> catalog.SearchFilter:
    return _flt(started_after=DAY_START, started_before=DAY_START + timedelta(days=1), **kw)


# (what a person or job does, the call that does it)
Query = Callable[[Conn, str], Awaitable[object]]
QUERIES: list[tuple[str, Query]] = [
    # The API's search and the console's lists (which add state = 'active').
    ("newest calls", lambda c, _: _search(c, _flt(), None, 51)),
    ("console newest calls", lambda c, _: _search(c, _flt(state="active"), None, 26)),
    ("agent", lambda c, _: _search(c, _flt(agent_id="A-007"), None, 51)),
    ("agent + day", lambda c, _: _search(c, _day(agent_id="A-007"), None, 51)),
    ("console agent + day",
     lambda c, _: _search(c, _day(agent_id="A-007", state="active"), None, 26)),
    ("agent, a deep page by cursor",
     lambda c, _: _search(c, _flt(agent_id="A-007"), (seed.started_of(9_007),
                                                          "rec_seed0000009007"), 51)),
    ("queue", lambda c, _: _search(c, _flt(queue="queue-03"), None, 51)),
    ("console queue + day",
     lambda c, _: _search(c, _day(queue="queue-03", state="active"), None, 26)),
    ("customer", lambda c, _: _search(c, _flt(customer_id="C-00000042"), None, 51)),
    ("console customer",
     lambda c, _: _search(c, _flt(customer_id="C-00000042", state="active"), None, 26)),
    ("call id", lambda c, _: _search(c, _flt(call_id="call-0000000042"), None, 51)),
    # Sorts, both ways, and the way back from a page.
    ("oldest calls first", lambda c, _: _search(
        c, _flt(state="active"), None, 26, "started_at")),
    ("console, the page before a deep one", lambda c, _: _search(
        c, _flt(state="active"), (seed.started_of(9_007), "rec_seed0000009007"), 26,
        "-started_at", True)),
    ("longest calls first",
     lambda c, _: _search(c, _flt(), None, 51, "-duration")),
    ("shortest calls, a deep page", lambda c, _: _search(
        c, _flt(), (300.0, "rec_seed0000009007"), 51, "duration")),
    ("agent + day, longest first", lambda c, _: _search(
        c, _day(agent_id="A-007", state="active"), None, 26, "-duration")),
    ("by agent", lambda c, _: _search(c, _flt(state="active"), None, 26, "agent")),
    ("by agent, a deep page", lambda c, _: _search(
        c, _flt(state="active"), ("A-007", seed.started_of(9_007), "rec_seed0000009007"), 26,
        "agent")),
    ("by agent, the page before", lambda c, _: _search(
        c, _flt(state="active"), ("A-007", seed.started_of(9_007), "rec_seed0000009007"), 26,
        "agent", True)),
    ("by agent Z to A, a day", lambda c, _: _search(c, _day(), None, 51, "-agent")),
    # Ids by prefix, any case: the ids it stands for, then each id's own index.
    ("agent by prefix (one agent)", lambda c, _: _search(
        c, _flt(agent_id="a-007", prefix=True, state="active"), None, 26)),
    ("agent by prefix (ten agents)", lambda c, _: _search(
        c, _flt(agent_id="a-00", prefix=True, state="active"), None, 26)),
    ("customer by prefix", lambda c, _: _search(
        c, _flt(customer_id="c-0000004", prefix=True, state="active"), None, 26)),
    ("call id by prefix", lambda c, _: _search(
        c, _flt(call_id="CALL-000000004", prefix=True), None, 26)),
    ("queue by prefix + day", lambda c, _: _search(
        c, _day(queue="QUEUE-0", prefix=True), None, 26)),
    ("phone number", lambda c, _: _search(
        c, _flt(phone_number="+358400000042", state="active"), None, 26)),
    ("kept for a purpose", lambda c, _: _search(
        c, _flt(purpose="training", kept_at=NEWEST, state="active"), None, 26)),
    ("outbound, 5 to 10 minutes, a day", lambda c, _: _search(
        c, _day(direction="outbound", min_duration=300, max_duration=600), None, 26)),
    # The console's "1-25 of N": stops at its cap.
    ("count: everything active", lambda c, _: recording_search.count(
        c, _flt(state="active"), 1_001)),
    ("count: agents by prefix", lambda c, _: recording_search.count(
        c, _flt(agent_id="a-00", prefix=True, state="active"), 1_001)),
    ("call id and leg lookup (an upload's retry)",
     lambda c, _: catalog.get_by_call_leg(c, "call-0000000042", "mixed")),
    ("a call's legs", lambda c, _: catalog.legs_of_call(c, "call-0000000042")),
    ("one day", lambda c, _: _search(c, _day(), None, 51)),
    ("console one day", lambda c, _: _search(c, _day(state="active"), None, 26)),
    ("purged only", lambda c, _: _search(c, _flt(state="purged"), None, 51)),
    ("a subject's recordings",
     lambda c, _: _search(c, _flt(subject_ref="0" * 64), None, 200)),
    ("a customer's holdable recordings",
     lambda c, _: retention_store.recording_ids_of_customer(c, "C-00000042")),
    # Retention.
    ("purge: due", lambda c, _: retention_store.due(c, NEWEST, None, 500)),
    ("purge: due, next page",
     lambda c, _: retention_store.due(c, NEWEST, (NEWEST - timedelta(days=1), "rec_seed0"), 500)),
    ("purge: interrupted", lambda c, _: retention_store.purging_ids(c)),
    ("falling due chart",
     lambda c, _: catalog.count_falling_due(c, [NEWEST, NEWEST + timedelta(days=30)], 10_000)),
    ("retention changed: a purpose's recordings, a page",
     lambda c, _: retention_store.purpose_rows_of(c, "training", "rec_seed0000001000", 1000)),
    ("orphan sweep: which blob names are known",
     lambda c, _: catalog.existing_blob_names(c, [f"{i:032x}" for i in range(500)])),
    # Keys.
    ("key versions in use", lambda c, _: catalog.key_versions_in_use(c, [1, 2])),
    ("key versions not loadable", lambda c, _: catalog.key_versions_beyond(c, [1])),
    ("keys to re-wrap", lambda c, _: catalog.wrapped_keys_not_at(c, 2, 500)),
    # The audit log.
    ("audit by recording", lambda c, _: audit_log.list_entries(
        c, audit_log.AuditFilter(recording_id="rec_seed0000000007"), 0, 51)),
    ("audit by actor",
     lambda c, _: audit_log.list_entries(c, audit_log.AuditFilter(actor="supervisor-3"), 0, 51)),
    ("audit by action",
     lambda c, _: audit_log.list_entries(c, audit_log.AuditFilter(action="search"), 0, 51)),
    ("audit by actor, newest first", lambda c, _: audit_log.list_entries(
        c, audit_log.AuditFilter(actor="supervisor-3"), 0, 51, True)),
    ("audit, newest first, a deep page",
     lambda c, _: audit_log.list_entries(c, audit_log.AuditFilter(), 9_000, 51, True)),
    ("audit, a deep page",
     lambda c, _: audit_log.list_entries(c, audit_log.AuditFilter(), 9_000, 51)),
    ("accesses per day",
     lambda c, dialect: audit_log.count_accesses_per_day(c, dialect, NEWEST - timedelta(days=1))),
    ("entries since the checkpoint", lambda c, _: audit_log.entries_since_checkpoint(c)),
    ("the first checkpoint holding an entry (a redaction's proof)",
     lambda c, _: audit_log.first_checkpoint_covering(c, 5_003)),
    ("verification state", lambda c, _: audit_log.verification_state(c)),
    ("archive: the last entry older than a day",
     lambda c, _: audit_archive.last_entry_before(c, NEWEST - timedelta(days=1), 0, 10_000)),
    ("archive: a bundle's entries", lambda c, _: audit_archive.catalog_bundle(c, 7)),
    # Quality review.
    ("an agent's evaluations", lambda c, _: evaluation_store.of_agent(
        c, evaluation_store.EvaluationFilter("A-007"), None, 51)),
    ("an agent's evaluations, averages in a quarter", lambda c, _: evaluation_store.averages(
        c, evaluation_store.EvaluationFilter("A-007", NEWEST - timedelta(days=90), NEWEST))),
    ("a call's evaluations", lambda c, _: evaluation_store.of_recording(c, "rec_seed0000000007")),
    ("a call's moments", lambda c, _: moment_store.moments_of(c, ["rec_seed0000000007"])),
    ("an evaluation's history",
     lambda c, _: evaluation_store.history(c, "eval_seed0000000010")),
    ("is the call evaluated as the agent's", lambda c, _: evaluation_store.exists_for(
        c, "rec_seed0000000010", "A-010")),
    # A report reads its period's evaluations: an hour of them here, a month in use.
    *[(f"quality report by {by}", lambda c, _, by=by: evaluation_store.report(
        c, by, NEWEST - timedelta(hours=2), NEWEST - timedelta(hours=1)))
      for by in ("agent_id", "queue", "evaluator")],
    # The training library.
    ("collections, newest first",
     lambda c, _: collection_store.list_collections(c, None, 51)),
    ("collections shared with an agent",
     lambda c, _: collection_store.list_collections(c, None, 51, "A-007")),
    ("a collection's clips", lambda c, _: collection_store.clips_of(c, "col_seed0007", 500)),
    ("a clip", lambda c, _: collection_store.get_clip(c, "col_seed0007", "clip_seed000007")),
    # Call records and coverage: a day's period (a month or a year in use: its size, not
    # the catalog's).
    ("calls due for reconciliation",
     lambda c, _: call_store.due(c, NEWEST - timedelta(minutes=15), 500)),
    ("a call's records", lambda c, _: call_store.by_call_ids(c, ["call-0000000042"])),
    ("the recordings of 500 calls", lambda c, _: call_store.audio_of(
        c, [f"call-{i:010d}" for i in range(500)])),
    ("coverage of a day", lambda c, _: call_store.counts(c, _calls_day())),
    ("coverage of a day, one PBX", lambda c, _: call_store.counts(c, _calls_day("pbx-1"))),
    ("coverage of a day, one queue",
     lambda c, _: call_store.counts(c, _calls_day(queue="queue-03"))),
    ("unmatched recordings of a day", lambda c, _: call_store.unmatched_days(
        c, _calls_day(), NEWEST)),
    ("unmatched recordings, a page", lambda c, _: call_store.unmatched_page(
        c, _calls_day(), NEWEST, None, 51)),
    *[(f"calls of a day: {what}", lambda c, _, kw=kw: call_store.page(
        c, _calls_day(kw.get("source"), kw.get("queue")), kw.get("status"),
        kw.get("call_id"), None, 51))
      for what, kw in (("all", {}), ("missing", {"status": "missing"}),
                       ("one PBX", {"source": "pbx-1"}), ("one queue", {"queue": "queue-03"}),
                       ("a call id", {"call_id": "call-0000000042"}))],
    ("calls, a deep page", lambda c, _: call_store.page(
        c, _calls_day(), None, None, (seed.started_of(9_007), "call_seed0000009007"), 51)),
    ("a customer's call records", lambda c, _: call_store.of_customer(c, "C-00000042")),
    ("call records past their retention",
     lambda c, _: call_store.delete_started_before(c, NEWEST - timedelta(days=400), 500)),
    # The request register.
    ("a subject's requests",
     lambda c, _: subject_store.list_requests(c, False, "C-00000042", None, 51)),
    ("a request by its reference", lambda c, _: subject_store.by_reference(c, "DSR-42")),
    ("overdue requests (a gauge)", lambda c, _: subject_store.count_overdue(c, NEWEST)),
]


def _newest_rows(plan: list[str], statement: str) -> bool:
    """SQLite reading a table backwards in its rowid order for the newest few rows, with no
    condition (``SCAN t`` for ``ORDER BY id DESC LIMIT n``): the rowid is its index."""
    return (re.search(r"\bLIMIT\b", statement) is not None
            and re.search(r"\bWHERE\b", statement) is None
            and not any("TEMP B-TREE" in line for line in plan))


def _full_scans(plan: list[str], statement: str) -> list[str]:
    """Lines of ``plan`` that read a whole big table (or a whole index of one, with no
    LIMIT to stop it)."""
    bad = []
    limited = re.search(r"\bLIMIT\b", statement) is not None
    for line in plan:
        for table in BIG_TABLES:
            if re.search(rf"Seq Scan on {table}\b", line):
                bad.append(line)
            scan = re.match(rf"\s*SCAN {table}\b(.*)", line)
            if scan and not (limited and "INDEX" in scan.group(1)) and not (
                    not scan.group(1) and _newest_rows(plan, statement)):
                bad.append(line)
    return bad


def _names_an_index(plan: list[str], statement: str) -> bool:
    return _newest_rows(plan, statement) or any(
        re.search(r"USING (COVERING )?INDEX|PRIMARY KEY|Index (Only )?Scan|"
                  r"Bitmap Index Scan", line) for line in plan)


def _reads_a_big_table(statement: str) -> bool:
    return any(re.search(rf"\bFROM {t}\b|\bJOIN {t}\b", statement) for t in BIG_TABLES)


async def _captured(database: Database, query: Query) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any,
                _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    engines = database.sync_engines()
    for engine in engines:
        event.listen(engine, "before_cursor_execute", capture)
    try:
        async with database.read() as conn:
            await query(conn, database.dialect)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", capture)
    return [(s, p) for s, p in seen if _reads_a_big_table(s)]


async def test_every_search_page_and_count_is_served_by_an_index(
        config: Config, clock: FrozenClock) -> None:
    async with open_services(config, clock) as svc:
        await seed.seed_recordings(svc.database, SEEDED, clock())
        await seed.seed_audit(svc.database, 10_000, clock(), checkpoint_every=10)
        await seed.seed_quality(svc.database, SEEDED)
        await seed.seed_calls(svc.database, SEEDED)
        await seed.analyze(svc.database)
        failures = []
        for name, query in QUERIES:
            statements = await _captured(svc.database, query)
            assert statements, f"{name}: no statement reached a big table"
            for statement, parameters in statements:
                plan = await svc.database.explain(statement, parameters)
                scans = _full_scans(plan, statement)
                if scans or not _names_an_index(plan, statement):
                    failures.append(f"{name}:\n  {statement}\n  " + "\n  ".join(plan))
        assert not failures, "\n\n".join(failures)


async def test_counts_shown_to_people_stop_at_their_cap(config: Config,
                                                        clock: FrozenClock) -> None:
    async with open_services(config, clock) as svc:
        await seed.seed_recordings(svc.database, 2_000, clock())
        ten_years = [NEWEST + timedelta(days=3640), NEWEST + timedelta(days=3660)]
        async with svc.database.read() as conn:
            assert await catalog.count_falling_due(conn, ten_years, 500) == [500]
            exact = await catalog.count_falling_due(conn, ten_years, 10_000)
    assert exact == [2_000 - 2 - 2]  # less the tombstones and the two due now


async def test_a_search_count_stops_past_its_cap(config: Config, clock: FrozenClock) -> None:
    async with open_services(config, clock) as svc:
        await seed.seed_recordings(svc.database, 3_000, clock())
        async with svc.database.read() as conn:
            everything = recording_search.SearchFilter(state="active")
            assert await recording_search.count(conn, everything, 1_001) == 1_001
            agents = recording_search.SearchFilter(agent_id="a-00", prefix=True, state="active")
            assert await recording_search.count(conn, agents, 1_001) == 60  # 10 of 500 agents
