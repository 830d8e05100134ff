"""Small secrets kept beside a recording (its waveform, its commitment's salt key), each
sealed under its own key derived from the recording's data key, so each goes when that key
is destroyed, and the audio's key is never used for anything else.

    sealed = version(1) || nonce(12) || AES-256-GCM(HKDF-SHA256(dek, info), plain,
                                                    aad = recording_id)
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"


def _key(dek: bytes, info: bytes) -> AESGCM:
    return AESGCM(HKDF(SHA256(), 32, salt=None, info=info).derive(dek))


def seal(dek: bytes, info: bytes, recording_id: str, plain: bytes) -> bytes:
    nonce = os.urandom(12)
    return _VERSION + nonce + _key(dek, info).encrypt(nonce, plain, recording_id.encode())


def open_sealed(dek: bytes, info: bytes, recording_id: str, sealed: bytes, what: str) -> bytes:
    """Raises cryptography's InvalidTag for another key, recording or altered bytes."""
    if sealed[:1] != _VERSION:
        raise ValueError(f"unknown {what} version")
    return _key(dek, info).decrypt(sealed[1:13], sealed[13:], recording_id.encode())
