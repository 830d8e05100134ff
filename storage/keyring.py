"""Versioned key-encryption keys (KEKs) that wrap each recording's data key.

The KEKs live in the catalog (``key_versions``), each sealed under the root key, which
stays in its custody (``storage/custody``). A process unseals each version once and keeps
it in memory; ``refresh`` picks up what another process or replica rotated or retired.

A wrapped data key is ``nonce(12) || AES-256-GCM(KEK, DEK, aad)`` with
``aad = recording_id || 0x00 || uint32_be(kek_version)``: a wrapped key copied onto
another recording, or relabelled with another version, does not unwrap.
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.exc import IntegrityError

from storage import key_store
from storage.custody.base import RootKey
from storage.database import Database
from storage.errors import CustodyError, KeyFileError, KeyringError

DEK_SIZE = 32


@dataclass(frozen=True)
class KeyVersion:
    version: int
    created_at: datetime
    retired_at: datetime | None

    @property
    def retired(self) -> bool:
        return self.retired_at is not None


def new_dek() -> bytes:
    return os.urandom(DEK_SIZE)


def wrap_aad(recording_id: str, version: int) -> bytes:
    return recording_id.encode() + b"\x00" + struct.pack(">I", version)


def kek_aad(version: int) -> bytes:
    """What a KEK is sealed with: a sealed KEK moved to another version does not open."""
    return b"recordings/kek/v1\x00" + struct.pack(">I", version)


class Keyring:
    def __init__(self, database: Database, root: RootKey) -> None:
        self._database = database
        self._root = root
        self._versions: list[KeyVersion] = []
        self._ciphers: dict[int, AESGCM] = {}
        self._loaded_at = -float("inf")

    @property
    def root(self) -> RootKey:
        return self._root

    async def refresh(self) -> None:
        async with self._database.read() as conn:
            rows = await key_store.key_rows(conn)
        self._apply(rows)
        self._loaded_at = time.monotonic()

    async def refresh_if_older(self, seconds: float) -> None:
        """Refreshes when the last read is older than ``seconds``: a rotation through
        another replica is used for new wraps here within that time."""
        if time.monotonic() - self._loaded_at >= seconds:
            await self.refresh()

    def _apply(self, rows: list[key_store.KeyRow]) -> None:
        ciphers: dict[int, AESGCM] = {}
        for row in rows:
            if row.retired_at is not None:
                continue  # destroyed on purpose: it unwraps nothing
            if row.sealed_key is None or row.root_generation is None:
                raise KeyFileError(
                    f"key-encryption key version {row.version} is not retired but the "
                    f"catalog holds no sealed key for it: the catalog is damaged; restore "
                    f"it from a backup")
            cipher = self._ciphers.get(row.version)
            if cipher is None:
                try:
                    key = self._root.unseal(row.root_generation, row.sealed_key,
                                            kek_aad(row.version))
                except CustodyError as exc:
                    raise KeyFileError(
                        f"{self._root.describe()} cannot open key-encryption key version "
                        f"{row.version} in the catalog ({exc}). Is this the root key this "
                        f"catalog was made with? Restore the right one from your key "
                        f"backup") from None
                cipher = AESGCM(key)
            ciphers[row.version] = cipher
        if not ciphers:
            raise KeyFileError("the catalog holds no usable key-encryption key: it is "
                               "damaged; restore it from a backup")
        self._ciphers = ciphers
        self._versions = [KeyVersion(r.version, r.created_at, r.retired_at) for r in rows]

    def versions(self) -> list[KeyVersion]:
        return list(self._versions)

    def current_version(self) -> int:
        usable = [v.version for v in self._versions if not v.retired]
        if not usable:
            raise KeyringError("no key-encryption key is loaded")
        return max(usable)

    def wrap(self, dek: bytes, recording_id: str) -> tuple[int, bytes]:
        version = self.current_version()
        if version not in self._ciphers:
            raise KeyringError(f"key-encryption key version {version} is not available")
        nonce = os.urandom(12)
        sealed = self._ciphers[version].encrypt(nonce, dek, wrap_aad(recording_id, version))
        return version, nonce + sealed

    def unwrap(self, wrapped: bytes, version: int, recording_id: str) -> bytes:
        cipher = self._ciphers.get(version)
        if cipher is None:
            raise KeyringError(f"key-encryption key version {version} is not available")
        try:
            return cipher.decrypt(wrapped[:12], wrapped[12:], wrap_aad(recording_id, version))
        except InvalidTag:
            raise KeyringError("wrapped data key failed authentication") from None

    async def unwrap_fresh(self, wrapped: bytes, version: int, recording_id: str) -> bytes:
        """``unwrap``, reading the catalog first when the version is new to this process
        (another replica rotated and wrapped under it)."""
        if version not in self._ciphers:
            await self.refresh()
        return self.unwrap(wrapped, version, recording_id)

    async def create_first(self, now: datetime) -> None:
        """Version 1, for a new installation."""
        await self._add(now, expect_first=True)

    async def rotate(self, now: datetime) -> int:
        """Makes a new version current (every replica wraps under it after its next
        refresh) and returns it."""
        return await self._add(now, expect_first=False)

    async def _add(self, now: datetime, expect_first: bool) -> int:
        generation = self._root.current()
        for _ in range(3):
            try:
                async with self._database.write() as conn:
                    rows = await key_store.key_rows(conn)
                    if expect_first and rows:
                        break  # another replica made it first
                    version = max((r.version for r in rows), default=0) + 1
                    sealed = self._root.seal(generation, AESGCM.generate_key(256),
                                             kek_aad(version))
                    await key_store.insert_key(conn, version, generation, sealed, now)
                break
            except IntegrityError:
                continue  # a concurrent rotation took the number: take the next
        else:
            raise KeyringError("could not add a key-encryption key version")
        await self.refresh()
        return self.current_version()

    async def retire(self, version: int, now: datetime) -> None:
        """Destroys a version's key; it can unwrap nothing afterwards."""
        await self.refresh()
        if version == self.current_version():
            raise KeyringError("the current key-encryption key cannot be retired")
        async with self._database.write() as conn:
            await key_store.retire_key(conn, version, now)
        await self.refresh()
