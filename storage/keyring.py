"""Versioned key-encryption keys (KEKs) that wrap each recording's data key.

A wrapped data key is ``nonce(12) || AES-256-GCM(KEK, DEK, aad)`` with
``aad = recording_id || 0x00 || uint32_be(kek_version)``: a wrapped key copied onto
another recording, or relabelled with another version, does not unwrap.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import struct
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storage.errors import KeyringError

DEK_SIZE = 32


@dataclass(frozen=True)
class KeyVersion:
    version: int
    created_at: str
    retired_at: str | None

    @property
    def retired(self) -> bool:
        return self.retired_at is not None


def new_dek() -> bytes:
    return os.urandom(DEK_SIZE)


def wrap_aad(recording_id: str, version: int) -> bytes:
    return recording_id.encode() + b"\x00" + struct.pack(">I", version)


def _well_formed(data: object) -> bool:
    """A keyring whose current version has a 32-byte key and whose entries all parse."""
    if not isinstance(data, dict) or not isinstance(data.get("versions"), list):
        return False
    keys: dict[object, object] = {}
    for entry in data["versions"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("version"), int):
            return False
        key = entry.get("key")
        if key is not None:
            try:
                if len(base64.b64decode(str(key), validate=True)) != 32:
                    return False
            except ValueError:
                return False
        keys[entry["version"]] = key
    return keys.get(data.get("current")) is not None


class Keyring(ABC):
    """Wraps and unwraps data keys; an HSM, Vault Transit or KMS can stand behind it."""

    @abstractmethod
    def current_version(self) -> int: ...

    @abstractmethod
    def wrap(self, dek: bytes, recording_id: str) -> tuple[int, bytes]:
        """Wraps under the current version; returns (version, wrapped)."""

    @abstractmethod
    def unwrap(self, wrapped: bytes, version: int, recording_id: str) -> bytes: ...

    @abstractmethod
    def rotate(self, now: datetime) -> int:
        """Makes a new version current and returns it."""

    @abstractmethod
    def retire(self, version: int, now: datetime) -> None:
        """Destroys a version's key material; it can unwrap nothing afterwards."""

    @abstractmethod
    def versions(self) -> list[KeyVersion]: ...

    @abstractmethod
    def refresh(self) -> None:
        """Picks up changes made by another process (e.g. ``keys rotate``)."""


class FileKeyring(Keyring):
    """KEKs in a JSON file (mode 0600) in the data directory."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._data: dict[str, object] = {}
        # Ciphers of the loaded versions, built on first use; dropped with what they came
        # from whenever the file is (re)loaded, so a retired version's cipher goes too.
        self._ciphers: dict[int, AESGCM] = {}
        self._mtime_ns = -1

    @classmethod
    def create(cls, path: Path, now: datetime) -> FileKeyring:
        """A new keyring with one version; fails if the file exists."""
        keyring = cls(path)
        with keyring._locked():
            if path.exists():
                raise KeyringError("keyring file exists already")
            keyring._data = {"current": 0, "versions": []}
            keyring._add_version(now)
            keyring._save()
            keyring._load()
        return keyring

    @classmethod
    def open(cls, path: Path) -> FileKeyring:
        """The keyring in ``path``; KeyringError when it is missing, empty or damaged."""
        keyring = cls(path)
        with keyring._locked():
            keyring._load()
        return keyring

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _load(self) -> None:
        try:
            st = self._path.stat()
            data = json.loads(self._path.read_text())
        except (OSError, ValueError) as exc:
            raise KeyringError("keyring file cannot be read") from exc
        if not _well_formed(data):
            raise KeyringError("keyring file is damaged")
        self._data = data
        self._ciphers = {}
        self._mtime_ns = st.st_mtime_ns

    def _save(self) -> None:
        tmp = self._path.with_name(self._path.name + ".tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps(self._data, indent=2).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._path)
        dir_fd = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _entries(self) -> list[dict[str, object]]:
        entries = self._data["versions"]
        assert isinstance(entries, list)
        return entries

    def _add_version(self, now: datetime) -> int:
        version = max((int(str(e["version"])) for e in self._entries()), default=0) + 1
        self._entries().append(
            {
                "version": version,
                "key": base64.b64encode(os.urandom(32)).decode(),
                "created_at": now.isoformat(),
                "retired_at": None,
            }
        )
        self._data["current"] = version
        return version

    def _key(self, version: int) -> AESGCM:
        cipher = self._ciphers.get(version)
        if cipher is not None:
            return cipher
        for entry in self._entries():
            if entry["version"] == version and entry["key"] is not None:
                cipher = self._ciphers[version] = AESGCM(base64.b64decode(str(entry["key"])))
                return cipher
        raise KeyringError(f"key-encryption key version {version} is not available")

    def refresh(self) -> None:
        try:
            mtime = self._path.stat().st_mtime_ns
        except OSError as exc:
            raise KeyringError("keyring file is missing") from exc
        if mtime != self._mtime_ns:
            self._load()

    def current_version(self) -> int:
        return int(str(self._data["current"]))

    def wrap(self, dek: bytes, recording_id: str) -> tuple[int, bytes]:
        version = self.current_version()
        nonce = os.urandom(12)
        sealed = self._key(version).encrypt(nonce, dek, wrap_aad(recording_id, version))
        return version, nonce + sealed

    def unwrap(self, wrapped: bytes, version: int, recording_id: str) -> bytes:
        try:
            key = self._key(version)
        except KeyringError:
            self.refresh()
            key = self._key(version)
        try:
            return key.decrypt(wrapped[:12], wrapped[12:], wrap_aad(recording_id, version))
        except InvalidTag:
            raise KeyringError("wrapped data key failed authentication") from None

    def rotate(self, now: datetime) -> int:
        with self._locked():
            self._load()
            version = self._add_version(now)
            self._save()
            self._load()
        return version

    def retire(self, version: int, now: datetime) -> None:
        with self._locked():
            self._load()
            if version == self.current_version():
                raise KeyringError("the current key-encryption key cannot be retired")
            for entry in self._entries():
                if entry["version"] == version and entry["retired_at"] is None:
                    entry["key"] = None
                    entry["retired_at"] = now.isoformat()
            self._save()
            self._load()

    def versions(self) -> list[KeyVersion]:
        return [
            KeyVersion(
                version=int(str(e["version"])),
                created_at=str(e["created_at"]),
                retired_at=None if e["retired_at"] is None else str(e["retired_at"]),
            )
            for e in self._entries()
        ]
