"""The service's Ed25519 signing key and C2SP signed notes.

A note is ``text`` (ending in a newline), a blank line, then one signature line
``— <name> base64(key_id(4) || signature(64))`` where ``key_id`` is the first four bytes
of ``SHA-256(name || 0x0A || 0x01 || public_key)`` (C2SP signed-note, Ed25519).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_PREFIX = "\u2014 "


def load_signing_key(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the signing key file does not hold an Ed25519 key")
    return key


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the public key is not an Ed25519 key")
    return key


def generate_signing_key_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name: str, key: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n\x01" + _raw(key)).digest()[:4]


def sign_note(text: str, name: str, key: Ed25519PrivateKey) -> str:
    if not text.endswith("\n"):
        raise ValueError("note text must end with a newline")
    signature = key.sign(text.encode())
    blob = base64.b64encode(key_id(name, key.public_key()) + signature).decode()
    return f"{text}\n{SIGNATURE_PREFIX}{name} {blob}\n"


def open_note(note: str, name: str, key: Ed25519PublicKey) -> str | None:
    """Returns the note's text when ``key`` signed it under ``name``, else None."""
    text, sep, signatures = note.rpartition("\n\n")
    if not sep:
        return None
    text += "\n"
    expected_id = key_id(name, key)
    for line in signatures.splitlines():
        if not line.startswith(SIGNATURE_PREFIX):
            continue
        signer, _, blob = line[len(SIGNATURE_PREFIX):].partition(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except ValueError:
            continue
        if signer != name or raw[:4] != expected_id:
            continue
        try:
            key.verify(raw[4:], text.encode())
        except InvalidSignature:
            return None
        return text
    return None
