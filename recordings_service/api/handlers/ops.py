"""Health, readiness, metrics, the OpenAPI document and the configured purposes."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from recordings_service import disk, keys
from recordings_service.api.handlers.common import json_response
from recordings_service.api.problems import problem
from recordings_service.appkeys import OPENAPI, services
from storage import subject_store
from storage.errors import StorageError


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


# Each check's own deadline: a probe (a load balancer's, Kubernetes') gives up after a few
# seconds, and a frozen dependency must read as "not ready", not as no answer at all.
CHECK_SECONDS = 2.0


async def readyz(request: web.Request) -> web.Response:
    svc = services(request)
    checks = {}
    try:
        async with asyncio.timeout(CHECK_SECONDS), svc.database.read() as conn:
            await conn.execute(text("SELECT 1"))
        checks["catalog"] = "ok"
    except (SQLAlchemyError, OSError, TimeoutError):
        checks["catalog"] = "unreachable"
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            await svc.blobs.ping()
        checks["blob_store"] = "ok"
    except (StorageError, OSError, TimeoutError):
        checks["blob_store"] = "unreachable"
    if checks["catalog"] == "ok":
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                checks["keys"] = await keys.readiness(svc)
        except TimeoutError:
            checks["keys"] = "not checked in time"
    checks["disk"] = disk.readiness(svc.config.data_dir, svc.config.min_free_disk_bytes)
    if all(v == "ok" for v in checks.values()):
        return json_response({"status": "ready", "checks": checks})
    return problem(503, "Service Unavailable", "not_ready",
                   ", ".join(f"{k}: {v}" for k, v in sorted(checks.items())))


async def metrics(request: web.Request) -> web.Response:
    svc = services(request)
    async with svc.database.read() as conn:
        svc.metrics.subject_requests_overdue.set(
            await subject_store.count_overdue(conn, svc.clock()))
    body = svc.metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI])


async def policies(request: web.Request) -> web.Response:
    purposes = services(request).config.purposes
    return json_response({"items": [
        {"purpose": p.name, "legal_basis": p.legal_basis,
         "retention_months": p.retention_months, "access_roles": sorted(p.access_roles),
         "withdrawable": p.legal_basis != "legal_obligation"}
        for p in purposes.values()
    ]})
