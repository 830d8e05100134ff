"""The ``pkcs11`` backend: the root key is a non-extractable AES-256 key in a token.

Works with HSMs, cloud HSMs and SoftHSM2 through their PKCS#11 module. Each generation is
a persistent secret-key object labelled ``key_label`` whose CKA_ID is the generation
number; sealing is AES-GCM performed inside the token, so the key's value never reaches
this process (the token refuses to reveal or wrap it out: SENSITIVE, not EXTRACTABLE).
The PIN comes from the caller (the ``RECORDINGS_PKCS11_PIN`` environment variable).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.mechanisms import GCMParams

from storage.custody.base import RootKey
from storage.errors import CustodyError

NONCE = 12


class Pkcs11RootKey(RootKey):
    def __init__(self, module: str, token_label: str, key_label: str, pin: str) -> None:
        self._where = f"PKCS#11 token {token_label!r} key {key_label!r}"
        self._key_label = key_label
        # A session is not for concurrent use: one call at a time.
        self._lock = threading.Lock()
        try:
            token = pkcs11.lib(module).get_token(token_label=token_label)
            try:
                self._session = token.open(user_pin=pin, rw=True)
            except pkcs11.exceptions.UserAlreadyLoggedIn:
                # PKCS#11 logs in per process: another handle in this process did.
                self._session = token.open(rw=True)
        except (pkcs11.PKCS11Error, RuntimeError, OSError) as exc:
            # Fails closed at start (a wrong PIN, a missing token or module); the
            # exception's type says which, and holds no PIN.
            raise CustodyError(f"cannot open {self._where} through {module}: "
                               f"{type(exc).__name__}") from None
        self._keys: dict[int, Any] = {}

    def describe(self) -> str:
        return self._where

    def _find(self) -> dict[int, Any]:
        found: dict[int, Any] = {}
        with self._lock:
            for key in self._session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY,
                                                  Attribute.LABEL: self._key_label}):
                try:
                    generation = int(bytes(key[Attribute.ID]).decode())
                except (ValueError, UnicodeDecodeError):
                    continue  # not one of ours
                found[generation] = key
        self._keys = found
        return found

    def exists(self) -> bool:
        return bool(self._find())

    def generations(self) -> list[int]:
        return sorted(self._find())

    def add_generation(self, first: bool = False) -> int:
        found = self._find()
        if first and found:
            return max(found)
        generation = max(found, default=0) + 1
        with self._lock:
            self._keys[generation] = self._session.generate_key(
                KeyType.AES, 256, label=self._key_label, id=str(generation).encode(),
                store=True, template={Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True,
                                      Attribute.ENCRYPT: True, Attribute.DECRYPT: True})
        return generation

    def destroy(self, generation: int) -> None:
        key = self._find().get(generation)
        if key is not None:
            with self._lock:
                key.destroy()
            self._keys.pop(generation, None)

    def _key(self, generation: int) -> Any:
        key = self._keys.get(generation) or self._find().get(generation)
        if key is None:
            raise CustodyError(f"{self._where} has no generation {generation}")
        return key

    def seal(self, generation: int, plaintext: bytes, aad: bytes) -> bytes:
        key = self._key(generation)
        nonce = os.urandom(NONCE)
        with self._lock:
            return nonce + bytes(key.encrypt(plaintext, mechanism=Mechanism.AES_GCM,
                                             mechanism_param=GCMParams(nonce, aad, 128)))

    def unseal(self, generation: int, sealed: bytes, aad: bytes) -> bytes:
        key = self._key(generation)
        try:
            with self._lock:
                return bytes(key.decrypt(sealed[NONCE:], mechanism=Mechanism.AES_GCM,
                                         mechanism_param=GCMParams(sealed[:NONCE], aad, 128)))
        except pkcs11.PKCS11Error:
            raise CustodyError(f"a value sealed under {self._where} generation {generation} "
                               f"failed authentication") from None

    def close(self) -> None:
        with self._lock:
            self._session.close()
