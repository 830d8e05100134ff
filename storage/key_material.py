"""The key hierarchy as a whole, and the one rule for making it.

    root key (custody: a file or an HSM; never leaves it)
      ├── key-encryption keys, versioned, sealed in the catalog ──> each recording's data key
      └── service secrets, sealed in the catalog: the audit signing key, the playback-link
          secret, the subject-reference key

Key material is made only for a new installation: no root key, and a catalog that holds
no sealed key and nothing a key protects (no recording, no audit entry). Afterwards a
missing root key, or one that cannot open the catalog's keys, stops the caller with a
message saying what to restore: new keys over stored recordings would make every one of
them unreadable for good, a new signing key would make the audit log look tampered, and
a new subject key would orphan every tombstone's subject reference.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.exc import IntegrityError

from storage import catalog, key_store
from storage.custody.base import RootKey
from storage.database import Conn, Database
from storage.errors import CustodyError, KeyFileError
from storage.keyring import Keyring, kek_aad

SIGNING_KEY = "audit-signing"
LINK_SECRET = "playback-link"  # noqa: S105 (a name)
SUBJECT_SECRET = "subject-ref"  # noqa: S105 (a name)
SECRET_NAMES = (SIGNING_KEY, LINK_SECRET, SUBJECT_SECRET)
# What an earlier release kept in plaintext files beside the catalog.
LEGACY_FILES = ("keyring.json", "audit-signing.key", "playback-link.key")


@dataclass(frozen=True)
class KeyMaterial:
    keyring: Keyring
    signing_key: Ed25519PrivateKey
    # Keys the playback links' MAC.
    link_secret: bytes
    # Keys the customers' pseudonyms (subject_ref) kept in tombstones.
    subject_secret: bytes


def secret_aad(name: str) -> bytes:
    return b"recordings/secret/v1\x00" + name.encode()


def new_secrets() -> dict[str, bytes]:
    return {SIGNING_KEY: Ed25519PrivateKey.generate().private_bytes_raw(),
            LINK_SECRET: os.urandom(32), SUBJECT_SECRET: os.urandom(32)}


async def store_secrets(conn: Conn, root: RootKey, values: dict[str, bytes],
                        now: datetime) -> None:
    generation = root.current()
    for name, value in values.items():
        await key_store.insert_secret(conn, name, generation,
                                      root.seal(generation, value, secret_aad(name)), now)


def legacy_files(data_dir: Path) -> list[str]:
    return [name for name in LEGACY_FILES if (data_dir / name).exists()]


async def _initialize(database: Database, keyring: Keyring, now: datetime) -> bool:
    """Secrets and KEK version 1 for a new installation; False when another replica
    sharing the catalog made them first."""
    try:
        async with database.write() as conn:
            if await key_store.secret_rows(conn):
                return False
            await store_secrets(conn, keyring.root, new_secrets(), now)
    except IntegrityError:
        return False
    await keyring.create_first(now)
    return True


async def _load_secrets(database: Database, root: RootKey) -> dict[str, bytes]:
    async with database.read() as conn:
        rows = await key_store.secret_rows(conn)
    values = {}
    for name in SECRET_NAMES:
        row = rows.get(name)
        if row is None:
            raise KeyFileError(f"the catalog lacks the sealed secret {name!r}: it is damaged; "
                               f"restore it from a backup")
        try:
            values[name] = root.unseal(row.root_generation, row.sealed_value, secret_aad(name))
        except CustodyError as exc:
            raise KeyFileError(f"{root.describe()} cannot open the catalog's secret {name!r} "
                               f"({exc}). Is this the root key this catalog was made with?"
                               ) from None
    return values


async def open_key_material(database: Database, root: RootKey, data_dir: Path,
                            now: datetime) -> tuple[KeyMaterial, bool]:
    """The key material, and whether it was created now (only ever for a new
    installation)."""
    legacy = legacy_files(data_dir)
    if legacy:
        raise KeyFileError(
            f"{data_dir} holds the key files of an earlier release ({', '.join(legacy)}). "
            f"Back them up, then run `recordings-service keys upgrade` once: it moves them "
            f"under the root key ({root.describe()}) and removes the plaintext files")
    async with database.read() as conn:
        key_rows, secret_rows = await key_store.key_rows(conn), await key_store.secret_rows(conn)
        holds_data = await catalog.holds_data(conn)
    has_keys = bool(key_rows or secret_rows)
    if bool(key_rows) != bool(secret_rows):
        # One half of the key hierarchy without the other: never made that way.
        raise KeyFileError("the catalog holds " + ("secrets but no key-encryption keys"
                                                   if secret_rows else
                                                   "key-encryption keys but no secrets")
                           + ": it is damaged; restore it from a backup")
    created = False
    if not root.exists():
        if has_keys or holds_data:
            raise KeyFileError(
                f"{root.describe()} is missing. Restore it from your key backup "
                f"(`recordings-service keys import`); the service makes a root key only for "
                f"a new installation, because the catalog's keys are sealed under it")
        root.add_generation(first=True)
        created = True
    keyring = Keyring(database, root)
    if not has_keys:
        if holds_data:
            raise KeyFileError("the catalog holds recordings or audit entries but no "
                               "key-encryption keys: it is damaged; restore it from a backup")
        created = await _initialize(database, keyring, now) or created
    await keyring.refresh()
    values = await _load_secrets(database, root)
    return KeyMaterial(keyring, Ed25519PrivateKey.from_private_bytes(values[SIGNING_KEY]),
                       values[LINK_SECRET], values[SUBJECT_SECRET]), created


async def rotate_root(database: Database, root: RootKey) -> tuple[int, list[int]]:
    """A new root key generation; every KEK and secret in the catalog is re-sealed under
    it in one transaction (data keys are untouched), then the older generations are
    destroyed. Returns (new generation, destroyed generations)."""
    new = root.add_generation()
    async with database.write() as conn:
        for row in await key_store.key_rows(conn):
            if row.sealed_key is None or row.root_generation is None:
                continue
            aad = kek_aad(row.version)
            value = root.unseal(row.root_generation, row.sealed_key, aad)
            await key_store.reseal_key(conn, row.version, new, root.seal(new, value, aad))
        for name, secret in (await key_store.secret_rows(conn)).items():
            aad = secret_aad(name)
            value = root.unseal(secret.root_generation, secret.sealed_value, aad)
            await key_store.reseal_secret(conn, name, new, root.seal(new, value, aad))
    async with database.read() as conn:
        in_use = await key_store.generations_in_use(conn)
    destroyed = [g for g in root.generations() if g != new and g not in in_use]
    for generation in destroyed:
        root.destroy(generation)
    return new, destroyed
