"""Shared fixtures: a real app over real HTTP on a real catalog, with a frozen clock."""

from __future__ import annotations

import io
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from recordings_service.app import create_app
from recordings_service.appkeys import SERVICES
from recordings_service.auth import create_token
from recordings_service.config import Config, load_config
from recordings_service.services import Services
from storage.blobstore.base import BlobStore
from tests.hsm import softhsm  # noqa: F401 (a fixture: a private SoftHSM2 token)
from tests.s3 import s3_env, seaweedfs  # noqa: F401 (fixtures)

PG_URL = os.environ.get("RECORDINGS_TEST_DATABASE_URL")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]


class FrozenClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 24, 9, 15, tzinfo=UTC))


async def reset_postgres(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


@pytest.fixture(params=BACKENDS)
async def config(request: pytest.FixtureRequest, tmp_path: Path) -> Config:
    """The two stacks: SQLite + filesystem blobs, and PostgreSQL + S3 (SeaweedFS)."""
    env: dict[str, str] = {}
    if request.param == "postgresql":
        assert PG_URL is not None
        await reset_postgres(PG_URL)
        env["RECORDINGS_DATABASE_URL"] = PG_URL
        seaweed = request.getfixturevalue("s3_env")
        env |= {"RECORDINGS_BLOB_STORE": "s3", "RECORDINGS_S3_ENDPOINT_URL": seaweed.endpoint,
                "RECORDINGS_S3_BUCKET": seaweed.bucket,
                "RECORDINGS_S3_PREFIX": seaweed.new_prefix()}
    return load_config(environ=env, data_dir=str(tmp_path / "data")).with_overrides(
        scheduler_enabled=False)


@dataclass
class Api:
    """The running service and a token per role, as a client would hold them."""

    client: TestClient[web.Request, web.Application]
    clock: FrozenClock
    tokens: dict[str, str] = field(default_factory=dict)
    replaced_stores: list[BlobStore] = field(default_factory=list)

    @property
    def app(self) -> web.Application:
        return self.client.server.app  # type: ignore[no-any-return]

    @property
    def services(self) -> Services:
        return self.app[SERVICES]

    async def replace_blob_store(self, store: BlobStore) -> None:
        """Puts ``store`` where the service's blob store was (closed now); ``store`` is
        closed after the test, which the service's own shutdown would not do."""
        await self.services.blobs.close()
        self.services.blobs = store
        self.replaced_stores.append(store)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def upload(self, audio: bytes, token: str = "ingest", **metadata: Any,
                     ) -> aiohttp.ClientResponse:
        meta = {"call_id": "call-1", "started_at": "2026-11-24T09:00:00Z",
                "purposes": ["training", "legal_protection"], **metadata}
        form = aiohttp.FormData()
        form.add_field("metadata", json.dumps(meta), content_type="application/json")
        # Wrapped: aiohttp refuses a large bytes value in a form (it warns on big bodies).
        form.add_field("audio", io.BytesIO(audio), filename="call.bin",
                       content_type="application/octet-stream")
        return await self.client.post("/v1/recordings", data=form, headers=self.auth(token))

    async def uploaded(self, audio: bytes, **metadata: Any) -> dict[str, Any]:
        response = await self.upload(audio, **metadata)
        assert response.status == 201, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    async def audio(self, recording_id: str, purpose: str | None, role: str,
                    headers: dict[str, str] | None = None, method: str = "GET",
                    ) -> aiohttp.ClientResponse:
        h = {**self.auth(role), **(headers or {})}
        if purpose is not None:
            h["Access-Purpose"] = purpose
        return await self.client.request(method, f"/v1/recordings/{recording_id}/audio",
                                         headers=h)

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None,
                   role: str = "compliance") -> tuple[int, Any]:
        """A JSON request as ``role``; the status and the decoded JSON answer."""
        response = await self.client.request(method, path, json=body, headers=self.auth(role))
        return response.status, await response.json()

    async def audit(self, **query: str) -> list[dict[str, Any]]:
        response = await self.client.get("/v1/audit", params={"limit": "500", **query},
                                         headers=self.auth("auditor"))
        assert response.status == 200, await response.text()
        return (await response.json())["items"]  # type: ignore[no-any-return]


@pytest.fixture
async def api(aiohttp_client: Any, config: Config, clock: FrozenClock) -> AsyncIterator[Api]:
    client = await aiohttp_client(create_app(config, clock))
    api = Api(client, clock)
    for role in ("ingest", "supervisor", "compliance", "auditor"):
        api.tokens[role] = await create_token(api.services.database, role, [role], clock())
    # An agent is one agent: A-7, as uploads name them in agent_id.
    api.tokens["agent"] = await create_token(api.services.database, "agent", ["agent"],
                                             clock(), agent_id="A-7")
    yield api
    for store in api.replaced_stores:
        await store.close()



# Each test module's time, printed at the end of the run (CI keeps the whole run well
# under its budget; this shows where the time goes).
_MODULE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    module = report.nodeid.split("::")[0]
    _MODULE_SECONDS[module] = _MODULE_SECONDS.get(module, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.section("time per test module")
    for module, seconds in sorted(_MODULE_SECONDS.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{seconds:8.1f} s  {module}")
