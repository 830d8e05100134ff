"""Generated requests from the served OpenAPI document (schemathesis), as each role and
as nobody: no server error, every answer as the document says, and the document no looser
than what the service accepts. Bounded in examples; a fixed seed keeps CI repeatable (run
with RECORDINGS_FUZZ_SEED=random to explore)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.audio import wav_tone
from tests.conftest import BACKENDS, PG_URL, reset_postgres
from tests.integration.helpers import free_port, new_service, start_serve

ROLES = ("ingest", "supervisor", "compliance", "auditor", "agent")
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance,negative_data_rejection")


async def _fuzz(url: str, token: str | None, workdir: Path) -> tuple[int, str]:
    seed = os.environ.get("RECORDINGS_FUZZ_SEED", "1")
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/v1/openapi.json",
               "--checks", CHECKS, "--max-examples", "10", "--workers", "1",
               "--phases", "examples,coverage,fuzzing", "--no-color",
               "--request-timeout", "30",
               *([] if seed == "random" else ["--seed", seed]),
               *(["-H", f"Authorization: Bearer {token}"] if token else [])]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=workdir, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 600)
    return process.returncode or 0, out.decode(errors="replace")


async def _seed(url: str, tokens: dict[str, str]) -> dict[str, str]:
    """A recording of a data subject, a playback link to it and a legal hold."""
    def auth(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[role]}"}

    async with aiohttp.ClientSession() as session:
        async with session.put(f"{url}/v1/calls/fuzz-1/recording", data=wav_tone(0.2),
                               params=[("started_at", "2026-11-24T09:00:00Z"),
                                       ("purpose", "training"), ("customer_id", "C-1")],
                               headers=auth("ingest")) as response:
            assert response.status == 201
            recording_id = (await response.json())["id"]
        async with session.post(f"{url}/v1/recordings/{recording_id}/playback-links",
                                json={"purpose": "training"},
                                headers=auth("supervisor")) as response:
            assert response.status == 201
            token = (await response.json())["url"].rsplit("/", 1)[1]
        async with session.post(f"{url}/v1/legal-holds", json={
                "case_reference": "FUZZ-1", "reason": "fuzz", "customer_id": "C-2"},
                headers=auth("compliance")) as response:
            assert response.status == 201
            hold_id = (await response.json())["id"]
    return {"recording_id": recording_id, "token": token, "hold_id": hold_id}


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
async def test_generated_requests_find_no_server_error_and_no_mismatch(
        tmp_path: Path, backend: str) -> None:
    catalog = ""
    if backend == "postgresql":  # its column types refuse what SQLite lets through
        assert PG_URL is not None
        await reset_postgres(PG_URL)
        catalog = f'[storage]\ndatabase_url = "{PG_URL}"\n'
    data, config, tokens = new_service(tmp_path, catalog, *ROLES)
    port = free_port()
    process = await start_serve(data, config, port)
    url = f"http://127.0.0.1:{port}"
    try:
        ids = await _seed(url, tokens)
        started = time.perf_counter()
        runs = {who: (tmp_path / who) for who in [*ROLES, "nobody"]}
        for workdir in runs.values():
            workdir.mkdir()
            # Real ids for the path parameters, so generated requests reach past the 404.
            (workdir / "schemathesis.toml").write_text("[parameters]\n" + "".join(
                f'"path.{name}" = "{value}"\n' for name, value in ids.items()))
        results = await asyncio.gather(*(
            _fuzz(url, tokens.get(who), workdir) for who, workdir in runs.items()))
        print(f"schemathesis: {len(runs)} runs in {time.perf_counter() - started:.1f} s")
        for who, (code, output) in zip(runs, results, strict=True):
            assert code == 0, f"as {who}:\n{output[-6000:]}"
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 60) == 0
