"""Waveforms for recordings uploaded before the service drew them: each active WAV without
one is decrypted, measured as an upload is (waveform.PeakMeter: the waveform, sealed under
its own data key, and the silence check). Run once after upgrading (`recordings-service
waveforms backfill`); it walks the catalog by id in batches, off the event loop's way
(one recording at a time), and can be stopped and run again: it picks up what is still
missing.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.exc import IntegrityError

from recordings_service import access, auditing, waveform
from recordings_service.auditing import SYSTEM_ORIGIN
from recordings_service.auth import Actor
from recordings_service.services import Services
from storage import catalog

BATCH = 200


async def _measured(services: Services,
                    rec: catalog.Recording) -> tuple[bytes, str | None] | None:
    """The sealed waveform and the silence check (waveform.silence_check)."""
    assert rec.wrapped_dek is not None and rec.key_version is not None
    meter = waveform.PeakMeter()
    async with access.open_reader(services, rec) as reader:
        async for chunk in reader.iter_range(0, rec.size_bytes - 1):
            await meter.feed_async(chunk)
    levels = meter.levels()
    if not levels:
        return None
    dek = await services.keyring.unwrap_fresh(rec.wrapped_dek, rec.key_version, rec.id)
    return (waveform.seal(dek, rec.id, levels, meter.seconds_per_level),
            waveform.silence_check(meter.channel_peaks()))


async def backfill(services: Services, actor: Actor,
                   progress: Callable[[int], None] = lambda _n: None) -> int:
    """How many waveforms it made. Each batch's recordings are named in one audit entry:
    their audio was decrypted to measure it."""
    made, after = 0, ""
    while True:
        async with services.database.read() as conn:
            ids = await catalog.wavs_without_waveform(conn, after, BATCH)
        if not ids:
            return made
        after = ids[-1]
        done = []
        for recording_id in ids:
            async with services.database.read() as conn:
                rec = await catalog.get_recording(conn, recording_id)
            if rec is None or rec.state != "active":
                continue  # purged meanwhile
            measured = await _measured(services, rec)
            if measured is None:
                continue
            try:
                async with services.database.write() as conn:
                    await catalog.insert_waveform(conn, rec.id, *measured)
            except IntegrityError:
                continue  # another run made it first
            done.append(rec.id)
        if done:
            made += len(done)
            await auditing.record(services, auditing.event(
                actor, SYSTEM_ORIGIN, "waveforms_built", "allowed",
                detail={"recording_ids": done}))
            progress(made)
