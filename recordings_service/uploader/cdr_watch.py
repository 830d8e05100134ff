"""``cdr-watch``: follows Asterisk's CSV call records (``cdr_csv``'s Master.csv, or a
``cdr_custom`` file) and sends each line to the service as a call record, once.

The offset read so far is kept in a state file (written atomically after the service took
the lines), with the file's inode: after a rotation (the file renamed, a new one begun)
the old file is found again by its inode in the same directory and read to its end
before the new one is started, even when the rotation happened while this was stopped.
Only whole lines are sent; a line still being written waits. Delivery is at least once
from here (a crash between the service's answer and the state's write sends lines again)
and once in the service, which keeps one record per (source, call id).
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

log = logging.getLogger("recordings_service.cdr_watch")

# cdr_csv's columns with loguniqueid and loguserfield on (Asterisk's defaults).
CSV_COLUMNS = ("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel",
               "lastapp", "lastdata", "start", "answer", "end", "duration", "billsec",
               "disposition", "amaflags", "uniqueid", "userfield")
BATCH = 500
# Asterisk writes times as "2026-11-24 09:00:00" in its zone (UTC with usegmtime).
_TIME = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Settings:
    file: Path
    url: str
    token: str
    source: str = "asterisk"
    columns: tuple[str, ...] = CSV_COLUMNS
    timezone: str = "UTC"
    state: Path | None = None  # default: .<name>.cdr-watch beside the file
    poll_seconds: float = 1.0
    backoff_max: float = 60.0

    @property
    def state_path(self) -> Path:
        return self.state or self.file.with_name(f".{self.file.name}.cdr-watch")


class Refused(Exception):
    """The service will not take these lines as they are (400): skipped, logged."""


def to_record(row: list[str], settings: Settings) -> dict[str, Any] | None:
    """The call record of one CSV row, or None for a row with the wrong shape."""
    if len(row) != len(settings.columns):
        return None
    cells = dict(zip(settings.columns, row, strict=True))
    zone = ZoneInfo(settings.timezone)

    def time(name: str) -> str | None:
        text = cells.get(name, "").strip()
        if not text:
            return None
        try:
            return datetime.strptime(text, _TIME).replace(tzinfo=zone).isoformat()
        except ValueError:
            return text  # the service refuses it, naming the field

    record: dict[str, Any] = {
        "call_id": cells.get("uniqueid") or None, "source": settings.source,
        "started_at": time("start"), "answered_at": time("answer"), "ended_at": time("end"),
        "phone_number": cells.get("src") or None,
        **{k: cells[k] or None for k in ("agent_id", "queue", "customer_id") if k in cells}}
    if cells.get("disposition", "ANSWERED") != "ANSWERED":
        record["answered_at"] = None  # Asterisk fills answer for some unanswered legs
    return record


@dataclass
class Position:
    inode: int
    offset: int


def _load(settings: Settings) -> Position | None:
    try:
        saved = json.loads(settings.state_path.read_text())
        return Position(int(saved["inode"]), int(saved["offset"]))
    except FileNotFoundError:
        return None


def _save(settings: Settings, position: Position) -> None:
    tmp = settings.state_path.with_name(settings.state_path.name + ".tmp")
    with tmp.open("w") as out:
        json.dump({"inode": position.inode, "offset": position.offset}, out)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(settings.state_path)


def _by_inode(directory: Path, inode: int) -> Path | None:
    for path in directory.iterdir():
        try:
            if path.stat().st_ino == inode and path.is_file():
                return path
        except OSError:
            continue
    return None


async def _send(session: aiohttp.ClientSession, settings: Settings,
                records: list[dict[str, Any]]) -> None:
    async with session.post(f"{settings.url.rstrip('/')}/v1/calls", json=records,
                            headers={"Authorization": f"Bearer {settings.token}"}) as answer:
        if answer.status == 200:
            return
        detail = (await answer.text())[:500]
        if answer.status == 400:
            raise Refused(detail)
        raise aiohttp.ClientResponseError(answer.request_info, (), status=answer.status,
                                          message=detail)


async def _deliver(session: aiohttp.ClientSession, settings: Settings, path: Path,
                   position: Position) -> int:
    """Sends the whole lines of ``path`` after ``position``, saving the position after each
    batch the service took; returns how many lines were sent."""
    sent = 0
    with path.open("rb") as source:
        source.seek(position.offset)
        while True:
            chunk = source.read(1024 * 1024)
            end = chunk.rfind(b"\n")
            if end < 0:
                return sent
            lines = chunk[:end + 1].decode("utf-8", "replace").splitlines()
            rows = list(csv.reader(lines))
            for start in range(0, len(rows), BATCH):
                batch = rows[start:start + BATCH]
                records = []
                for row in batch:
                    record = to_record(row, settings)
                    if record is None:
                        log.warning("a line without the configured columns was skipped",
                                    extra={"columns": len(row)})
                    else:
                        records.append(record)
                await _send_or_skip(session, settings, records)
                sent += len(batch)
            position.offset += end + 1
            _save(settings, position)
            source.seek(position.offset)


async def _send_or_skip(session: aiohttp.ClientSession, settings: Settings,
                        records: list[dict[str, Any]]) -> None:
    if not records:
        return
    try:
        await _send(session, settings, records)
    except Refused:
        # One bad line refuses its batch: send them one by one, skipping the bad ones.
        for record in records:
            try:
                await _send(session, settings, [record])
            except Refused as refused:
                log.warning("a call record was refused and skipped",
                            extra={"call_id": record.get("call_id"), "detail": str(refused)})


async def step(session: aiohttp.ClientSession, settings: Settings) -> int:
    """One pass: the rest of a rotated file, then the current one. Lines sent."""
    try:
        current = settings.file.stat().st_ino
    except FileNotFoundError:
        return 0  # between a rotation and the first new line
    position = _load(settings) or Position(current, 0)
    if position.inode == current and settings.file.stat().st_size < position.offset:
        position.offset = 0  # truncated in place (logrotate's copytruncate)
    sent = 0
    if position.inode != current:
        old = _by_inode(settings.file.parent, position.inode)
        if old is not None:
            sent += await _deliver(session, settings, old, position)
        position = Position(current, 0)
        _save(settings, position)
    return sent + await _deliver(session, settings, settings.file, position)


async def run(settings: Settings, once: bool = False) -> None:
    wait = settings.poll_seconds
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        while True:
            try:
                await step(session, settings)
                wait = settings.poll_seconds
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.warning("the service did not take the call records; retrying",
                            extra={"error": type(exc).__name__})
                if once:
                    raise
                wait = min(wait * 2, settings.backoff_max)
            if once:
                return
            await asyncio.sleep(wait)
