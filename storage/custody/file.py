"""The ``file`` backend: the root key's generations in one 0600 JSON file.

The file may live outside the data directory (``keys.root_key_file``), on a volume that
the data backups do not copy; replicas point at the same file. It is rewritten whole
(temporary file, fsync, rename, fsync of the directory) under an exclusive lock.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storage.custody.base import RootKey
from storage.durable import fsync_path
from storage.errors import CustodyError, KeyFileError

FORMAT = "recordings-root-key/1"
NONCE = 12


def _parse(data: object) -> dict[int, bytes] | None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    keys: dict[int, bytes] = {}
    entries = data.get("generations")
    if not isinstance(entries, list) or not entries:
        return None
    for entry in entries:
        if not isinstance(entry, dict):
            return None
        generation, value = entry.get("generation"), entry.get("key")
        if not isinstance(generation, int) or isinstance(generation, bool) or generation < 1:
            return None
        try:
            key = base64.b64decode(str(value), validate=True)
        except ValueError:
            return None
        if len(key) != 32:
            return None
        keys[generation] = key
    return keys


def encode(keys: dict[int, bytes]) -> bytes:
    return json.dumps({"format": FORMAT, "generations": [
        {"generation": g, "key": base64.b64encode(k).decode()} for g, k in sorted(keys.items())
    ]}, indent=2).encode()


def decode(raw: bytes, where: str) -> dict[int, bytes]:
    try:
        keys = _parse(json.loads(raw))
    except ValueError:
        keys = None
    if keys is None:
        raise KeyFileError(f"root key file {where} is empty or damaged. Restore it from your "
                           f"key backup (recordings-service keys export made one)")
    return keys


def write_private(path: Path, data: bytes) -> None:
    """Replaces ``path`` with ``data`` (0600), durably."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_path(path.parent)


class FileRootKey(RootKey):
    def __init__(self, path: Path) -> None:
        self._path = path
        self._keys: dict[int, bytes] = {}
        self._ciphers: dict[int, AESGCM] = {}

    def describe(self) -> str:
        return f"root key file {self._path}"

    def exists(self) -> bool:
        return self._path.exists()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._path.with_name(self._path.name + ".lock"),
                     os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _load(self) -> dict[int, bytes]:
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            raise KeyFileError(f"{self.describe()} is missing. Restore it from your key "
                               f"backup; the service makes a root key only for a new "
                               f"installation") from None
        except OSError:
            raise KeyFileError(f"{self.describe()} cannot be read") from None
        self._keys = decode(raw, str(self._path))
        self._ciphers = {}
        return self._keys

    def generations(self) -> list[int]:
        return sorted(self._load())

    def add_generation(self, first: bool = False) -> int:
        with self._locked():
            keys = self._load() if self._path.exists() else {}
            if first and keys:
                return max(keys)
            generation = max(keys, default=0) + 1
            keys[generation] = AESGCM.generate_key(256)
            write_private(self._path, encode(keys))
            self._keys, self._ciphers = keys, {}
        return generation

    def destroy(self, generation: int) -> None:
        with self._locked():
            keys = self._load()
            if keys.pop(generation, None) is not None:
                if not keys:
                    raise CustodyError("the last root key generation cannot be destroyed")
                write_private(self._path, encode(keys))
            self._keys, self._ciphers = keys, {}

    def _cipher(self, generation: int) -> AESGCM:
        cipher = self._ciphers.get(generation)
        if cipher is None:
            key = self._keys.get(generation) or self._load().get(generation)
            if key is None:
                raise CustodyError(f"{self.describe()} has no root key generation {generation}")
            cipher = self._ciphers[generation] = AESGCM(key)
        return cipher

    def seal(self, generation: int, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + self._cipher(generation).encrypt(nonce, plaintext, aad)

    def unseal(self, generation: int, sealed: bytes, aad: bytes) -> bytes:
        try:
            return self._cipher(generation).decrypt(sealed[:NONCE], sealed[NONCE:], aad)
        except InvalidTag:
            raise CustodyError(f"a value sealed under {self.describe()} generation "
                               f"{generation} failed authentication") from None
