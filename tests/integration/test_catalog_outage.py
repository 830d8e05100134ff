"""PostgreSQL connections dropped under the service: 503 with Retry-After at worst, never
a 500, a clean reconnect, and nothing acknowledged lost."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from recordings_service.config import Config
from tests.audio import wav_tone
from tests.conftest import PG_URL, Api
from tests.integration.helpers import recording_count

pytestmark = pytest.mark.postgres


async def _terminate_service_connections() -> int:
    assert PG_URL is not None
    conn = await asyncpg.connect(PG_URL)
    try:
        return len(await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    finally:
        await conn.close()


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
