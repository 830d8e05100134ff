"""Group commit of audit entries: batched, gapless, committed before each caller returns."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from recordings_service import jobs
from storage.audit_log import AuditEvent
from storage.schema import audit_entries
from tests.conftest import Api


async def test_concurrent_appends_share_commits_and_each_is_durable_on_return(api: Api) -> None:
    svc = api.services
    transactions = 0
    real_write = svc.database.write

    def counting_write():  # type: ignore[no-untyped-def]
        nonlocal transactions
        transactions += 1
        return real_write()

    svc.database.write = counting_write  # type: ignore[method-assign]
    try:
        async def one(i: int) -> None:
            entry = await svc.audit.append(
                AuditEvent(actor="bench", action="stream", outcome="allowed",
                           detail={"i": i}), api.clock())
            # Visible to another connection as soon as the caller gets it back.
            async with svc.database.read() as conn:
                seen = (await conn.execute(select(func.count()).select_from(audit_entries)
                                           .where(audit_entries.c.seq == entry["seq"]))
                        ).scalar_one()
            assert seen == 1

        await asyncio.gather(*(one(i) for i in range(100)))
    finally:
        svc.database.write = real_write  # type: ignore[method-assign]
    assert transactions < 100  # batched
    report = await jobs.verify_audit(svc)
    assert report.ok


async def test_a_failed_commit_fails_every_waiting_caller(api: Api) -> None:
    svc = api.services

    class Boom(Exception):
        pass

    def broken():  # type: ignore[no-untyped-def]
        raise Boom()

    real_write = svc.database.write
    svc.database.write = broken  # type: ignore[method-assign]
    try:
        results = await asyncio.gather(
            *(svc.audit.append(AuditEvent(actor="a", action="x", outcome="allowed"),
                               api.clock()) for _ in range(5)), return_exceptions=True)
    finally:
        svc.database.write = real_write  # type: ignore[method-assign]
    assert all(isinstance(r, Boom) for r in results)
    entry = await svc.audit.append(AuditEvent(actor="a", action="x", outcome="allowed"),
                                   api.clock())
    assert entry["seq"] >= 1



async def test_one_entry_that_cannot_be_stored_fails_alone(api: Api) -> None:
    svc = api.services

    class Unserializable:
        pass

    good = [svc.audit.append(AuditEvent(actor="a", action="x", outcome="allowed",
                                        detail={"i": i}), api.clock()) for i in range(20)]
    bad = svc.audit.append(AuditEvent(actor="a", action="x", outcome="allowed",
                                      detail={"x": Unserializable()}), api.clock())
    results = await asyncio.gather(*good[:10], bad, *good[10:], return_exceptions=True)
    assert isinstance(results[10], TypeError)
    assert all(isinstance(r, dict) for r in results[:10] + results[11:])
    assert (await jobs.verify_audit(svc)).ok


async def test_undecodable_text_and_nul_are_stored_replaced_not_refused(api: Api) -> None:
    entry = await api.services.audit.append(
        AuditEvent(actor="a\x00b", action="x", outcome="denied", reason="r\udcff",
                   detail={"range": "bytes=0-3\udcff", "k\ud800": ["\x00"]}), api.clock())
    assert entry["actor"] == "a\ufffdb" and entry["reason"] == "r\ufffd"
    assert entry["detail"] == {"range": "bytes=0-3\ufffd", "k\ufffd": ["\ufffd"]}
    assert (await jobs.verify_audit(api.services)).ok
