"""Moving an earlier release's key files under the root key (``keys upgrade``).

That release kept its key-encryption keys (``keyring.json``), its audit signing key and
its playback-link secret as plaintext files beside the catalog. The upgrade seals each
into the catalog under the root key, keeping every KEK version number (old recordings'
data keys stay wrapped as they are) and deriving the subject-reference key as that
release did (tombstones keep matching their subjects), then removes the files. Run again
after a crash, it checks what the catalog holds against the files and finishes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage import key_store
from storage.custody.base import RootKey
from storage.database import Database
from storage.durable import fsync_path
from storage.errors import KeyFileError
from storage.key_material import (
    LEGACY_FILES,
    LINK_SECRET,
    SIGNING_KEY,
    SUBJECT_SECRET,
    legacy_files,
    secret_aad,
    store_secrets,
)
from storage.keyring import kek_aad
from storage.signing import load_signing_key


@dataclass(frozen=True)
class LegacyVersion:
    version: int
    key: bytes | None
    created_at: datetime
    retired_at: datetime | None


def _damaged(path: Path) -> KeyFileError:
    return KeyFileError(f"key file {path} is empty or damaged; restore it from your backup "
                        f"of the key files before upgrading")


def _versions(path: Path) -> list[LegacyVersion]:
    try:
        data: Any = json.loads(path.read_bytes())
        versions = []
        for entry in data["versions"]:
            key = entry["key"]
            raw = None if key is None else base64.b64decode(str(key), validate=True)
            if raw is not None and len(raw) != 32:
                raise ValueError
            retired = entry.get("retired_at")
            versions.append(LegacyVersion(
                int(entry["version"]), raw, datetime.fromisoformat(entry["created_at"]),
                None if retired is None else datetime.fromisoformat(retired)))
    except (OSError, ValueError, KeyError, TypeError):
        raise _damaged(path) from None
    if not any(v.key for v in versions):
        raise _damaged(path)
    return versions


def _secrets(data_dir: Path) -> dict[str, bytes]:
    signing_path, link_path = data_dir / LEGACY_FILES[1], data_dir / LEGACY_FILES[2]
    try:
        signing = load_signing_key(signing_path.read_bytes())
    except (OSError, ValueError, TypeError):
        raise _damaged(signing_path) from None
    try:
        link = link_path.read_bytes()
    except OSError:
        raise _damaged(link_path) from None
    if len(link) != 32:
        raise _damaged(link_path)
    assert isinstance(signing, Ed25519PrivateKey)
    return {SIGNING_KEY: signing.private_bytes_raw(), LINK_SECRET: link,
            # The earlier release keyed subject references with this derivation.
            SUBJECT_SECRET: hmac.new(link, b"subject-ref/v1", hashlib.sha256).digest()}


async def upgrade(database: Database, root: RootKey, data_dir: Path, now: datetime,
                  ) -> dict[str, Any]:
    """Seals the key files into the catalog and removes them; returns a report."""
    present = legacy_files(data_dir)
    if not present:
        raise KeyFileError(f"{data_dir} holds no key files of an earlier release: nothing "
                           f"to upgrade")
    if len(present) != len(LEGACY_FILES):
        missing = next(n for n in LEGACY_FILES if n not in present)
        raise KeyFileError(f"key file {data_dir / missing} is missing; restore it from your "
                           f"backup of the key files before upgrading")
    versions = _versions(data_dir / LEGACY_FILES[0])
    secrets = _secrets(data_dir)
    root.add_generation(first=True)
    generation = root.current()
    async with database.write() as conn:
        rows = {r.version: r for r in await key_store.key_rows(conn)}
        if not rows:
            for v in versions:
                sealed = None if v.key is None else root.seal(generation, v.key,
                                                             kek_aad(v.version))
                await key_store.insert_key(conn, v.version, generation, sealed, v.created_at,
                                           v.retired_at)
            await store_secrets(conn, root, secrets, now)
        else:
            # An interrupted upgrade: the catalog must hold exactly these keys.
            stored = await key_store.secret_rows(conn)
            for v in versions:
                row = rows.get(v.version)
                same = row is not None and (
                    (v.key is None and row.sealed_key is None) or
                    (v.key is not None and row.sealed_key is not None
                     and row.root_generation is not None
                     and root.unseal(row.root_generation, row.sealed_key,
                                     kek_aad(v.version)) == v.key))
                if not same:
                    raise KeyFileError(f"the catalog holds key-encryption keys that differ "
                                       f"from {data_dir / LEGACY_FILES[0]}; not upgrading")
            for name, value in secrets.items():
                row_s = stored.get(name)
                if row_s is None or root.unseal(row_s.root_generation, row_s.sealed_value,
                                                secret_aad(name)) != value:
                    raise KeyFileError(f"the catalog's secret {name!r} differs from the key "
                                       f"files; not upgrading")
    removed = []
    for name in [*LEGACY_FILES, "keyring.json.lock", "keyring.json.tmp"]:
        path = data_dir / name
        if path.exists():
            path.unlink()
            removed.append(str(path))
    fsync_path(data_dir)
    return {"root_key": root.describe(), "root_generation": generation,
            "key_versions": [v.version for v in versions],
            "retired_versions": [v.version for v in versions if v.key is None],
            "removed_files": removed}
