"""The data directory's key files, and the one rule for making them.

Key material is made only for a new installation: no key file present and a catalog that
holds nothing a key protects (no recording, no audit entry). Afterwards a missing, empty
or damaged key file stops the caller with an error naming the file: minting a new
keyring over stored recordings would make every one of them unreadable for good, a new
signing key would make the whole audit log look tampered, and a new link secret would
orphan every subject reference.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage.errors import KeyFileError, KeyringError
from storage.keyring import FileKeyring
from storage.private_files import create_private_file
from storage.signing import generate_signing_key_pem, load_signing_key

KEYRING = "keyring.json"
SIGNING_KEY = "audit-signing.key"
LINK_SECRET = "playback-link.key"  # noqa: S105 (a file name)
KEY_FILES = (KEYRING, SIGNING_KEY, LINK_SECRET)
LINK_SECRET_SIZE = 32


@dataclass(frozen=True)
class KeyMaterial:
    keyring: FileKeyring
    signing_key: Ed25519PrivateKey
    # Keys the playback links' MAC and the customers' pseudonyms (subject_ref).
    link_secret: bytes


def _restore_hint(path: Path, problem: str) -> KeyFileError:
    return KeyFileError(
        f"key file {path} {problem}. Restore it from your backup of the key files; the "
        f"service does not make new keys for a data directory that holds data, because "
        f"what the old keys protect would become unreadable or unverifiable.")


def _create(data_dir: Path, now: datetime) -> None:
    # The keyring last: it is the file whose presence says "initialized".
    create_private_file(data_dir / SIGNING_KEY, generate_signing_key_pem())
    create_private_file(data_dir / LINK_SECRET, os.urandom(LINK_SECRET_SIZE))
    FileKeyring.create(data_dir / KEYRING, now)


def _load(data_dir: Path) -> KeyMaterial:
    keyring_path = data_dir / KEYRING
    try:
        keyring = FileKeyring.open(keyring_path)
    except KeyringError:
        raise _restore_hint(keyring_path, "is empty or damaged") from None
    signing_path = data_dir / SIGNING_KEY
    try:
        signing_key = load_signing_key(signing_path.read_bytes())
    except (OSError, ValueError, TypeError):
        raise _restore_hint(signing_path, "is empty or damaged") from None
    link_path = data_dir / LINK_SECRET
    try:
        link_secret = link_path.read_bytes()
    except OSError:
        raise _restore_hint(link_path, "cannot be read") from None
    if len(link_secret) != LINK_SECRET_SIZE:
        raise _restore_hint(link_path, "is empty or damaged")
    return KeyMaterial(keyring, signing_key, link_secret)


def open_key_material(data_dir: Path, now: datetime, catalog_holds_data: bool,
                      ) -> tuple[KeyMaterial, bool]:
    """The key material, and whether it was created now (only ever for a new directory)."""
    present = [name for name in KEY_FILES if (data_dir / name).exists()]
    if not present and not catalog_holds_data:
        _create(data_dir, now)
        return _load(data_dir), True
    missing = [name for name in KEY_FILES if name not in present]
    if missing:
        raise _restore_hint(data_dir / missing[0], "is missing"
                            + (" (so are the other key files)" if not present else ""))
    return _load(data_dir), False
