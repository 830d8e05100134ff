"""Looking at what the service left on disk and in the catalog."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import TypeVar

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis.strategies import SearchStrategy
from sqlalchemy import func, select

from recordings_service.services import Services
from storage.schema import recordings

T = TypeVar("T")


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


async def stored_blobs(services: Services) -> list[str]:
    """The names of the committed blobs, from the store (a directory or a bucket)."""
    return sorted([name async for name, _ in services.blobs.names()])


async def incomplete(services: Services) -> int:
    """Writes begun and neither committed nor discarded."""
    return await services.blobs.incomplete_writes()


async def recording_count(services: Services) -> int:
    async with services.database.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(recordings))).scalar_one())


async def blob_name(services: Services, recording_id: str) -> str:
    async with services.database.read() as conn:
        return str((await conn.execute(
            select(recordings.c.blob_name).where(recordings.c.id == recording_id))).scalar_one())


async def blob_bytes(services: Services, recording_id: str) -> bytes:
    name = await blob_name(services, recording_id)
    return await services.blobs.read(name, 0, await services.blobs.size(name))


async def replace_blob(services: Services, recording_id: str, data: bytes) -> None:
    """Overwrites a recording's stored blob, as an attacker with write access would."""
    writer = await services.blobs.open_writer(await blob_name(services, recording_id))
    await writer.write(data)
    await writer.commit()


def contains_plaintext_run(haystack: bytes, plaintext: bytes, window: int = 32) -> bool:
    """True when ``haystack`` holds any run of 48+ bytes of ``plaintext``.

    Every such run contains one of the plaintext's ``window``-byte pieces that start at a
    multiple of ``window // 2``, so those are the only pieces looked for.
    """
    step = window // 2
    pieces = {plaintext[i : i + window] for i in range(0, len(plaintext) - window + 1, step)}
    return any(haystack[i : i + window] in pieces for i in range(len(haystack) - window + 1))


def service_env() -> dict[str, str]:
    """The environment for a service subprocess, free of the caller's RECORDINGS_* settings
    (a test database URL must not leak into it)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RECORDINGS_")}


def run_cli(data_dir: Path, *args: str, check: bool = False, env: dict[str, str] | None = None,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``recordings-service ARGS --data-dir DATA_DIR`` in a subprocess (``env`` added to
    the service environment, ``stdin`` its input)."""
    return subprocess.run([sys.executable, "-m", "recordings_service", *args,
                           "--data-dir", str(data_dir)], capture_output=True, text=True,
                          env=service_env() | (env or {}), timeout=60, check=check,
                          input=stdin)


def new_service(tmp_path: Path, config_text: str = "", *roles: str,
                ) -> tuple[Path, Path, dict[str, str]]:
    """A data directory, a config file (scheduler off, then ``config_text``) and a token
    per role (named after it), as an operator sets up before ``serve``."""
    data, config = tmp_path / "data", tmp_path / "c.toml"
    config.write_text("[scheduler]\nenabled = false\n" + config_text)
    tokens = {role: run_cli(data, "tokens", "create", "--name", role, "--role", role,
                            *(["--agent-id", "A-7"] if role == "agent" else []),
                            "--config", str(config), check=True).stdout.split()[-1]
              for role in roles}
    return data, config, tokens


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def listeners(port: int) -> int:
    """Listening TCP sockets on the port: one per serve process (SO_REUSEPORT)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows
               if row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_serve(data: Path, config: Path, port: int,
                      stderr: int = asyncio.subprocess.DEVNULL,
                      env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    """``recordings-service serve`` in a subprocess, returned once it answers /readyz."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "recordings_service", "serve", "--data-dir", str(data),
        "--config", str(config), "--port", str(port), env=service_env() | (env or {}),
        stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
        # Its own process group: a test can kill it with its workers, as a crash would.
        start_new_session=True)
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as r:
                    if r.status == 200:
                        return process
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    process.kill()
    raise AssertionError("serve did not become ready")


def generated(strategy: SearchStrategy[T], count: int) -> list[T]:
    """``count`` values drawn by hypothesis (the same ones on every run), for a test that
    must run them through one app or browser rather than under ``@given``."""
    found: list[T] = []

    @settings(max_examples=count, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: T) -> None:
        found.append(value)

    collect()
    return found
