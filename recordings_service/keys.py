"""Key rotation at both levels of the hierarchy.

A new key-encryption key version: data keys are re-wrapped in batches and the old version
retired. Audio is never re-encrypted: only the 60-byte wrapped data keys change. A new
root key generation: the catalog's sealed KEKs and secrets are re-sealed (data keys are
untouched) and the older generation destroyed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from recordings_service import auditing
from recordings_service.auditing import SYSTEM_ORIGIN
from recordings_service.auth import Actor
from recordings_service.services import Services
from storage import catalog, key_material, key_store
from storage.errors import CustodyError, KeyringError

log = logging.getLogger(__name__)

KEYS_ACTOR = Actor("system:keys", frozenset())

# A version stops being used for new wraps once every process has seen the rotation; it
# is retired only when it has been superseded this long and wraps no data key.
RETIRE_GRACE = timedelta(hours=1)


async def rotate(services: Services, actor: Actor = KEYS_ACTOR) -> int:
    version = await services.keyring.rotate(services.clock())
    await auditing.record(services, auditing.event(
        actor, SYSTEM_ORIGIN, "key_rotation", "allowed", detail={"new_version": version}))
    log.info("rotated key-encryption key", extra={"key_version": version})
    return version


async def rotate_root(services: Services, actor: Actor = KEYS_ACTOR) -> dict[str, Any]:
    generation, destroyed = await key_material.rotate_root(services.database,
                                                           services.keyring.root)
    await services.keyring.refresh()
    await auditing.record(services, auditing.event(
        actor, SYSTEM_ORIGIN, "root_key_rotation", "allowed",
        detail={"new_generation": generation, "destroyed_generations": destroyed}))
    log.info("rotated the root key", extra={"root_generation": generation})
    return {"root_generation": generation, "destroyed_generations": destroyed}


@dataclass(frozen=True)
class RewrapResult:
    rewrapped: int
    retired: list[int]


async def rewrap(services: Services, actor: Actor = KEYS_ACTOR) -> RewrapResult:
    keyring = services.keyring
    await keyring.refresh()
    current = keyring.current_version()
    moved = 0
    while True:
        async with services.database.read() as conn:
            batch = await catalog.wrapped_keys_not_at(conn, current, services.config.rewrap_batch)
        if not batch:
            break
        async with services.database.write() as conn:
            for recording_id, version, wrapped in batch:
                dek = await keyring.unwrap_fresh(wrapped, version, recording_id)
                new_version, rewrapped = keyring.wrap(dek, recording_id)
                if new_version != current:
                    raise KeyringError("the current key version changed during re-wrap")
                if await catalog.replace_wrapped_key(conn, recording_id, version, current,
                                                     rewrapped):
                    moved += 1
    retired = await _retire_unused(services, current, services.clock())
    if moved or retired:
        await auditing.record(services, auditing.event(
            actor, SYSTEM_ORIGIN, "key_rewrap", "allowed",
            detail={"rewrapped": moved, "to_version": current, "retired_versions": retired}))
    return RewrapResult(moved, retired)


async def _retire_unused(services: Services, current: int, now: datetime) -> list[int]:
    versions = services.keyring.versions()
    async with services.database.read() as conn:
        in_use = await catalog.key_versions_in_use(
            conn, [v.version for v in versions if not v.retired and v.version != current])
    superseded_at = {v.version: next((w.created_at for w in versions if w.version > v.version),
                                     None) for v in versions}
    retired = []
    for v in versions:
        since = superseded_at[v.version]
        if v.retired or v.version == current or v.version in in_use or since is None:
            continue
        if now - since < RETIRE_GRACE:
            continue
        await services.keyring.retire(v.version, now)
        retired.append(v.version)
    return retired


async def status(services: Services) -> dict[str, Any]:
    await services.keyring.refresh()
    async with services.database.long_read() as conn:
        counts = await catalog.key_version_counts(conn)
    current = services.keyring.current_version()
    root = services.keyring.root
    return {
        "root_key": {"custody": services.config.keys_backend, "where": root.describe(),
                     "generations": root.generations()},
        "current_version": current,
        "versions": [
            {"version": v.version, "created_at": v.created_at, "retired_at": v.retired_at,
             "current": v.version == current, "data_keys": counts.get(v.version, 0)}
            for v in services.keyring.versions()
        ],
    }


async def readiness(services: Services) -> str:
    """"ok", or why stored data keys cannot be unwrapped (``/readyz``)."""
    try:
        await services.keyring.refresh()
        # The process keeps its unsealed keys, but a new version or a restart needs the
        # custody: look at it too.
        available = set(services.keyring.root.generations())
    except (CustodyError, KeyringError):
        return "root key or key-encryption keys unavailable"
    usable = {v.version for v in services.keyring.versions() if not v.retired}
    async with services.database.read() as conn:
        missing = sorted(await catalog.key_versions_beyond(conn, usable))
        sealed_under = await key_store.generations_in_use(conn)
    if sealed_under - available:
        return "root key generations not available: " + ", ".join(
            map(str, sorted(sealed_under - available)))
    if missing:
        return "key versions not loadable: " + ", ".join(map(str, missing))
    try:
        # What an upload does next: the current version wraps, and unwraps what it wrapped.
        version, wrapped = services.keyring.wrap(bytes(32), "readyz")
        services.keyring.unwrap(wrapped, version, "readyz")
    except KeyringError:
        return "the current key-encryption key does not work"
    return "ok"
