"""``upload-watch``: moves every finished recording from a spool directory into the
service, then removes the plaintext.

Delivery is at least once from here and exactly once in the service: each upload names its
``call_id`` and ``sha256``, so a retry of something the service already holds answers 200
and changes nothing. The uploader can be killed at any moment: what is still in the spool
is uploaded on the next start, and a file leaves the spool only after the service said
201 or 200.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import watchfiles
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from recordings_service.backup import sha256_file
from recordings_service.uploader.names import NamePattern
from recordings_service.uploader.spool import Ready, Spool

log = logging.getLogger("recordings_service.uploader")

# Answers after which the same upload may succeed later: the service is down, busy,
# shedding load, out of disk, or (401/403) our token is being fixed by an operator.
# Everything else in 4xx is about this file and will not change by retrying.
RETRY_STATUSES = frozenset({401, 403, 408, 425, 429})


@dataclass(frozen=True)
class Settings:
    directory: Path
    url: str
    token: str
    purposes: list[str]
    pattern: NamePattern | None = None
    stable_seconds: float = 5.0
    metadata_grace_seconds: float = 60.0
    keep: Path | None = None  # move delivered files here instead of deleting them
    polling: bool = False  # where inotify does not work (network filesystems)
    scan_seconds: float = 1.0
    backoff_first: float = 1.0
    backoff_max: float = 60.0
    metrics_port: int | None = None


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.queued = Gauge("recordings_uploader_queued",
                            "Recordings in the spool, ready or still being written", registry=r)
        self.oldest = Gauge("recordings_uploader_oldest_waiting_seconds",
                            "How long the oldest recording in the spool has waited", registry=r)
        self.uploaded = Counter("recordings_uploader_uploaded",
                                "Recordings the service confirmed (201 or 200)", registry=r)
        self.retried = Counter("recordings_uploader_retried",
                               "Upload attempts that will be retried", ["reason"], registry=r)
        self.failed = Counter("recordings_uploader_failed",
                              "Recordings set aside in failed/", ["reason"], registry=r)


@dataclass
class _Backoff:
    attempts: int = 0
    next_at: float = 0.0


@dataclass
class Uploader:
    settings: Settings
    spool: Spool
    metrics: Metrics = field(default_factory=Metrics)
    _backoff: dict[str, _Backoff] = field(default_factory=dict)

    async def pass_once(self, session: aiohttp.ClientSession) -> int:
        """Uploads what is ready and due; the number delivered."""
        scan = self.spool.scan()
        self.metrics.queued.set(scan.waiting)
        self.metrics.oldest.set(scan.oldest_seconds)
        for bad in scan.unusable:
            self._set_aside(bad.path, bad.sidecar, bad.reason, bad.detail)
        delivered = 0
        now = asyncio.get_running_loop().time()
        for ready in scan.ready:
            state = self._backoff.get(ready.path.name)
            if state is not None and state.next_at > now:
                continue
            if await self._deliver(session, ready):
                delivered += 1
        return delivered

    async def _deliver(self, session: aiohttp.ClientSession, ready: Ready) -> bool:
        ref = _ref(ready.path)
        try:
            digest = await asyncio.to_thread(sha256_file, ready.path)
        except FileNotFoundError:
            return False
        metadata = {**ready.metadata, "sha256": digest}
        log.info("uploading", extra={"file_ref": ref})
        try:
            status, reason, detail = await self._upload(session, ready.path, metadata)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._retry(ready.path, type(exc).__name__, None)
            return False
        if status in (200, 201):
            try:
                self.spool.delivered(ready.path, ready.sidecar, self.settings.keep)
            except OSError as exc:
                # The service has it; the next pass sends it again (a 200) and retries this.
                self._retry(ready.path, f"cleanup:{type(exc).__name__}", status)
                return False
            self._backoff.pop(ready.path.name, None)
            self.metrics.uploaded.inc()
            log.info("delivered", extra={"file_ref": ref, "status": status})
            return True
        if status >= 500 or status in RETRY_STATUSES:
            self._retry(ready.path, reason or str(status), status)
            return False
        self._set_aside(ready.path, ready.sidecar, reason or str(status), detail, status)
        return False

    async def _upload(self, session: aiohttp.ClientSession, path: Path,
                      metadata: dict[str, Any]) -> tuple[int, str | None, str]:
        """POST multipart: the metadata travels in the body, never in the URL."""
        form = aiohttp.FormData()
        form.add_field("metadata", json.dumps(metadata), content_type="application/json")
        with path.open("rb") as audio:
            form.add_field("audio", audio, filename="recording",
                           content_type="application/octet-stream")
            async with session.post(
                    self.settings.url.rstrip("/") + "/v1/recordings", data=form,
                    headers={"Authorization": f"Bearer {self.settings.token}"}) as response:
                body = await response.read()
        try:
            problem = json.loads(body) if response.status >= 400 else {}
        except ValueError:
            problem = {}
        if not isinstance(problem, dict):
            problem = {}
        return (response.status, problem.get("reason"),
                str(problem.get("detail", response.reason or "")))

    def _retry(self, path: Path, reason: str, status: int | None) -> None:
        state = self._backoff.setdefault(path.name, _Backoff())
        state.attempts += 1
        ceiling = min(self.settings.backoff_max,
                      self.settings.backoff_first * 2 ** min(state.attempts - 1, 30))
        delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret
        state.next_at = asyncio.get_running_loop().time() + delay
        self.metrics.retried.labels(reason).inc()
        log.warning("will retry", extra={"file_ref": _ref(path), "reason": reason,
                                         "status": status, "attempt": state.attempts,
                                         "delay_seconds": round(delay, 2)})

    def _set_aside(self, path: Path, sidecar: Path | None, reason: str, detail: str,
                   status: int | None = None) -> None:
        try:
            self.spool.set_aside(path, sidecar, reason, detail, status)
        except OSError as exc:
            log.error("could not set a file aside", extra={"file_ref": _ref(path),
                                                          "error": type(exc).__name__})
            return
        self._backoff.pop(path.name, None)
        self.metrics.failed.labels(reason).inc()
        log.error("set aside in failed/", extra={"file_ref": _ref(path), "reason": reason,
                                                "status": status})


def _ref(path: Path) -> str:
    """A stable reference to a file for the logs: its name may carry a call id or a phone
    number, so the logs never do."""
    return hashlib.sha256(path.name.encode()).hexdigest()[:12]


async def _wakeups(settings: Settings, stop: asyncio.Event) -> AsyncIterator[None]:
    """A tick whenever the spool changes (inotify; polling if asked) and at least every
    ``scan_seconds`` (stability is a matter of time passing, not of events)."""
    async for _ in watchfiles.awatch(
            settings.directory, stop_event=stop, force_polling=settings.polling,
            rust_timeout=int(settings.scan_seconds * 1000), yield_on_timeout=True,
            recursive=False, debounce=200):
        yield


async def run(settings: Settings, once: bool = False) -> int:
    """Watches until SIGTERM/SIGINT (or, with ``once``, until nothing is left that can be
    delivered now); the number of recordings delivered."""
    # A read lease (spool.open_for_writing) is broken with SIGIO, whose default action
    # ends the process; the lease is released at once anyway.
    signal.signal(signal.SIGIO, signal.SIG_IGN)
    # It says "1 change detected" at INFO for every write a recorder makes.
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    settings.directory.mkdir(parents=True, exist_ok=True)
    spool = Spool(settings.directory, purposes=settings.purposes, pattern=settings.pattern,
                  stable_seconds=settings.stable_seconds,
                  metadata_grace_seconds=settings.metadata_grace_seconds)
    uploader = Uploader(settings, spool)
    if settings.metrics_port is not None:
        start_http_server(settings.metrics_port, addr="127.0.0.1",
                          registry=uploader.metrics.registry)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    delivered = 0
    timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        delivered += await uploader.pass_once(session)
        if once:
            return delivered
        log.info("watching", extra={"polling": settings.polling})
        async for _ in _wakeups(settings, stop):
            delivered += await uploader.pass_once(session)
    log.info("stopped", extra={"delivered": delivered})
    return delivered
