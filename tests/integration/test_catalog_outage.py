"""PostgreSQL connections dropped under the service: 503 with Retry-After at worst, never
a 500, a clean reconnect, and nothing acknowledged lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from recordings_service.config import Config
from tests.audio import wav_tone
from tests.conftest import PG_URL, Api
from tests.integration.helpers import recording_count

pytestmark = pytest.mark.postgres


@asynccontextmanager
async def _admin() -> AsyncIterator[tuple[asyncpg.Connection, str]]:
    """A connection to the server's ``postgres`` database (the test one may be refusing
    connections), and the test database's name."""
    assert PG_URL is not None
    server, name = PG_URL.rsplit("/", 1)
    conn = await asyncpg.connect(server + "/postgres")
    try:
        yield conn, name
    finally:
        await conn.close()


async def _terminate_service_connections() -> int:
    async with _admin() as (conn, name):
        return len(await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()", name))


async def test_dropped_connections_never_cost_a_500_or_an_acknowledged_upload(
        api: Api, config: Config) -> None:
    if not config.database_url:
        pytest.skip("PostgreSQL only")
    acknowledged: set[str] = set()

    async def upload(i: int) -> int:
        response = await api.upload(wav_tone(0.1, frequency=200 + i), call_id=f"o{i}")
        if response.status in (200, 201):
            acknowledged.add((await response.json())["id"])
        elif response.status == 503:
            assert response.headers["Retry-After"]
            assert (await response.json())["reason"] == "catalog_unavailable"
        return response.status

    for round_ in range(3):
        await asyncio.gather(*(upload(round_ * 20 + i) for i in range(10)))
        assert await _terminate_service_connections() > 0
        statuses = await asyncio.gather(*(upload(round_ * 20 + 10 + i) for i in range(10)))
        assert set(statuses) <= {201, 503}, statuses
    after = await api.upload(wav_tone(0.1, frequency=999), call_id="after")
    assert after.status == 201  # reconnected
    acknowledged.add((await after.json())["id"])
    assert await recording_count(api.services) >= len(acknowledged)
    for recording_id in acknowledged:
        status, _ = await api.call("GET", f"/v1/recordings/{recording_id}")
        assert status == 200


async def _allow_connections(allow: bool) -> None:
    async with _admin() as (conn, name):
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')


async def test_a_database_refusing_connections_is_a_503_not_a_500(
        api: Api, config: Config) -> None:
    if not config.database_url:
        pytest.skip("PostgreSQL only")
    rec = await api.uploaded(wav_tone(0.1, frequency=321), call_id="before")
    await _allow_connections(False)
    try:
        await _terminate_service_connections()
        for _ in range(3):
            status, body = await api.call("GET", f"/v1/recordings/{rec['id']}")
            assert (status, body["reason"]) == (503, "catalog_unavailable"), body
        refused = await api.upload(wav_tone(0.1, frequency=322), call_id="during")
        assert refused.status == 503
        assert (await refused.json())["reason"] == "catalog_unavailable"
        ready = await api.client.get("/readyz")
        assert ready.status == 503
    finally:
        await _allow_connections(True)
    status, _ = await api.call("GET", f"/v1/recordings/{rec['id']}")
    assert status == 200
