"""Operations: health, readiness, metrics, request ids, OpenAPI, logs, deny by default."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate

from recordings_service.api.routes import PUBLIC_ROUTES
from recordings_service.app import create_app
from recordings_service.config import Config
from recordings_service.logs import JsonFormatter, quiet_third_party_loggers
from recordings_service.routing import GUARDS
from storage.blobstore.s3 import S3BlobStore
from tests.audio import wav_noise, wav_tone
from tests.conftest import Api
from tests.integration.helpers import blob_name, free_port


async def test_health_and_readiness(api: Api) -> None:
    assert (await api.client.get("/healthz")).status == 200
    ready = await api.client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["checks"] == {"catalog": "ok", "blob_store": "ok", "keys": "ok",
                                            "disk": "ok"}


async def test_readiness_fails_when_the_blob_store_is_gone(api: Api) -> None:
    config = api.services.config
    if config.blob_store == "s3":
        await api.replace_blob_store(await S3BlobStore.open("no-such-bucket", "",
                                                            config.s3_endpoint_url))
    else:
        blobs = config.data_dir / "blobs"
        blobs.rename(blobs.with_name("moved"))
    ready = await api.client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["reason"] == "not_ready"


async def test_metrics_count_requests_uploads_streams_and_audit(api: Api) -> None:
    audio = wav_tone(0.5)
    rec = await api.uploaded(audio)
    await api.audio(rec["id"], "training", "supervisor")
    await api.audio(rec["id"], "security", "supervisor")
    text = await (await api.client.get("/metrics")).text()

    def value(pattern: str) -> float:
        match = re.search(pattern + r" ([0-9.e+]+)", text)
        assert match, pattern
        return float(match.group(1))

    assert value(r'recordings_uploads_total\{outcome="created"\}') == 1
    assert value(r"recordings_audio_bytes_streamed_total") == len(audio)
    assert value(r"recordings_upload_bytes_total") == len(audio)
    assert value(r'recordings_audit_appends_total\{action="stream",outcome="denied"\}') == 1
    assert value(r'recordings_errors_total\{reason="purpose_not_allowed"\}') == 1
    assert value(r'recordings_http_requests_total\{method="POST",route="/v1/recordings",'
                 r'status="201"\}') == 1


async def test_request_id_is_echoed_or_made(api: Api) -> None:
    echoed = await api.client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert echoed.headers["X-Request-Id"] == "abc-123"
    made = await api.client.get("/v1/recordings")  # a 401 carries one too
    assert made.status == 401 and re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-Id"])
    hostile = await api.client.get("/healthz", headers={"X-Request-Id": "a\tb" * 100})
    assert hostile.headers["X-Request-Id"] != "a\tb" * 100


async def test_every_route_but_the_public_ones_needs_credentials(api: Api) -> None:
    guards = api.app[GUARDS]
    for resource in api.app.router.resources():
        for route in resource:
            if route.method == "*":
                continue
            guard = guards[(route.method, resource.canonical)]  # every route declares one
            assert guard.public == ((route.method, resource.canonical) in PUBLIC_ROUTES
                                    or (guard.face == "console" and guard.action in
                                    ("sign_in", "static")))
            if guard.public:
                continue
            path = re.sub(r"{\w+}", "x", resource.canonical)
            for headers in ({}, {"Authorization": "Bearer rst_wrong"}):
                response = await api.client.request(route.method, path, headers=headers,
                                                    allow_redirects=False)
                if guard.face == "api":
                    assert response.status == 401, (route.method, path)
                else:  # a page sends the browser to sign in, then back
                    assert response.status == 303, (route.method, path)
                    assert response.headers["Location"].startswith("/sign-in?next=")


async def test_a_route_registered_without_a_guard_is_refused(config: Config) -> None:
    async def forgotten(request: web.Request) -> web.Response:
        return web.Response(text="secret")

    app = create_app(config)
    app.router.add_get("/forgotten", forgotten)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/forgotten")
        assert response.status == 403
        assert (await response.json())["reason"] == "route_not_guarded"


async def test_unknown_paths_and_methods_are_problems(api: Api) -> None:
    missing = await api.client.get("/v1/nothing-here")
    assert missing.status == 404
    assert missing.headers["Content-Type"] == "application/problem+json"
    wrong = await api.client.delete("/healthz")
    assert wrong.status == 405
    assert (await wrong.json())["reason"] == "method_not_allowed"


async def test_openapi_document_is_valid_and_matches_the_routes(api: Api) -> None:
    doc = await (await api.client.get("/v1/openapi.json")).json()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, ops in doc["paths"].items()
                  for method in ops}
    served = {(route.method, resource.canonical) for resource in api.app.router.resources()
              for route in resource if route.method != "*"
              and api.app[GUARDS][(route.method, resource.canonical)].face == "api"}
    assert documented == served


async def test_policies_list_the_configured_purposes(api: Api) -> None:
    body = await (await api.client.get("/v1/policies", headers=api.auth("ingest"))).json()
    by_name = {p["purpose"]: p for p in body["items"]}
    assert by_name["training"] == {"purpose": "training", "legal_basis": "consent",
                                   "retention_months": 6, "access_roles": ["agent", "supervisor"],
                                   "withdrawable": True}
    assert by_name["accounting_record"]["retention_months"] == 120
    assert by_name["accounting_record"]["withdrawable"] is False


async def test_logs_hold_no_personal_data(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    quiet_third_party_loggers()  # as `serve` does at start
    caplog.set_level(logging.DEBUG)
    secrets = {"customer": "CUST-SECRET-991", "phone": "+358409998877",
               "agent": "AGENT-SECRET-5", "call": "CALL-SECRET-77"}
    rec = await api.uploaded(wav_tone(0.2), customer_id=secrets["customer"],
                             phone_number=secrets["phone"], agent_id=secrets["agent"],
                             call_id=secrets["call"])
    await api.client.get("/v1/recordings", params={"customer_id": secrets["customer"]},
                         headers=api.auth("compliance"))
    await api.client.put(f"/v1/calls/{secrets['call']}/recording", data=b"junk",
                         params={"started_at": "2026-11-24T09:00:00Z", "purpose": "training"},
                         headers=api.auth("ingest"))
    await api.audio(rec["id"], "training", "supervisor")
    formatter = JsonFormatter()
    logged = "\n".join(formatter.format(r) for r in caplog.records)
    assert "request" in logged
    for value in secrets.values():
        assert value not in logged
    assert api.tokens["ingest"] not in logged


async def test_errors_never_leak_paths_or_traces(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.2))
    await api.services.blobs.delete(await blob_name(api.services, rec["id"]))
    response = await api.audio(rec["id"], "training", "supervisor")
    assert response.status == 500
    text = await response.text()
    assert "Traceback" not in text and str(api.services.config.data_dir) not in text
    assert (await response.json())["reason"] == "blob_missing"


async def test_a_revoked_token_is_refused_at_once(api: Api) -> None:
    from storage import catalog

    assert (await api.client.get("/v1/policies", headers=api.auth("auditor"))).status == 200
    async with api.services.database.write() as conn:
        assert await catalog.revoke_token(conn, "auditor", api.clock())
    refused = await api.client.get("/v1/policies", headers=api.auth("auditor"))
    assert refused.status == 401
    assert (await refused.json())["reason"] == "unauthenticated"


async def test_an_unreachable_object_store_is_a_503_with_retry_after(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.3), call_id="before")
    # A bucket on a port where nothing listens: every store call fails to connect.
    await api.replace_blob_store(
        await S3BlobStore.open("bucket", "", f"http://127.0.0.1:{free_port()}"))
    upload = await api.upload(wav_tone(0.3, frequency=600), call_id="during")
    stream = await api.audio(rec["id"], "training", "supervisor")
    for response in (upload, stream):
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        body = await response.json()
        assert body["reason"] == "storage_unavailable" and "127.0.0.1" not in body["detail"]
    ready = await api.client.get("/readyz")
    assert ready.status == 503
    # Nothing half-written: the failed upload left no recording.
    status, found = await api.call("GET", "/v1/recordings?call_id=during")
    assert status == 200 and found["items"] == []


async def _black_hole(held: list[asyncio.StreamWriter]) -> asyncio.Server:
    """An endpoint that accepts connections and never answers: an object store frozen
    (SIGSTOP) or a network that drops replies."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        while await reader.read(65536):
            pass

    return await asyncio.start_server(swallow, "127.0.0.1", 0)


async def test_a_frozen_object_store_is_a_503_within_its_deadline_never_a_hang(
        api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.3), call_id="before")
    held: list[asyncio.StreamWriter] = []
    hole = await _black_hole(held)
    port = hole.sockets[0].getsockname()[1]
    await api.replace_blob_store(await S3BlobStore.open(
        "bucket", "", f"http://127.0.0.1:{port}", call_seconds=1.0))
    try:
        # Bounded by the deadline (and its retries), not by the 60-90 s a read timeout
        # and three attempts took: the whole exchange fits in this generous limit.
        async with asyncio.timeout(60):
            small = await api.upload(wav_tone(0.3, frequency=610), call_id="small")
            # Over one 8 MiB part: the store stalls while the client is still sending.
            large = await api.upload(wav_noise(9_000_000), call_id="large")
            stream = await api.audio(rec["id"], "training", "supervisor")
            ready = await api.client.get("/readyz")
        for response in (small, large, stream):
            assert response.status == 503, await response.text()
            assert response.headers["Retry-After"] == "5"
            # The store's stall, not the client's: never 408 body_timeout.
            assert (await response.json())["reason"] == "storage_unavailable"
        assert ready.status == 503
        assert "blob_store: unreachable" in (await ready.json())["detail"]
    finally:
        hole.close()
        for writer in held:
            writer.close()
        await hole.wait_closed()
    # Nothing of the refused uploads is a recording, now or later.
    for call_id in ("small", "large"):
        status, found = await api.call("GET", f"/v1/recordings?call_id={call_id}")
        assert status == 200 and found["items"] == []
