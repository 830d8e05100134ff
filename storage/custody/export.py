"""The file backend's root key, exported under an operator's passphrase (``keys export``).

    {"format": "recordings-root-key-export/1",
     "kdf": {"name": "scrypt", "n": 131072, "r": 8, "p": 1, "salt": base64(16)},
     "nonce": base64(12), "ciphertext": base64(AES-256-GCM(key, root key file, aad))}

with ``aad`` the format string. Kept apart from the data backups, it is what restores the
root key file on a new machine (``keys import``).
"""

from __future__ import annotations

import base64
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from storage.errors import CustodyError

FORMAT = "recordings-root-key-export/1"
MIN_PASSPHRASE = 12
# scrypt at 128 MiB of memory: about a second per guess on a server.
N, R, P = 2**17, 8, 1


def _key(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def export_key_file(content: bytes, passphrase: str) -> bytes:
    if len(passphrase) < MIN_PASSPHRASE:
        raise CustodyError(f"the passphrase must have at least {MIN_PASSPHRASE} characters")
    salt, nonce = os.urandom(16), os.urandom(12)
    sealed = AESGCM(_key(passphrase, salt, N, R, P)).encrypt(nonce, content, FORMAT.encode())
    return json.dumps({
        "format": FORMAT,
        "kdf": {"name": "scrypt", "n": N, "r": R, "p": P,
                "salt": base64.b64encode(salt).decode()},
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(sealed).decode(),
    }, indent=2).encode() + b"\n"


def import_key_file(exported: bytes, passphrase: str) -> bytes:
    try:
        data = json.loads(exported)
        kdf = data["kdf"]
        if data["format"] != FORMAT or kdf["name"] != "scrypt":
            raise ValueError
        n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
        if not (2**14 <= n <= 2**22 and 1 <= r <= 32 and 1 <= p <= 16):
            raise ValueError  # a hostile file must not make us allocate gigabytes
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(data["nonce"], validate=True)
        sealed = base64.b64decode(data["ciphertext"], validate=True)
    except (ValueError, KeyError, TypeError):
        raise CustodyError("this is not a root key export of this service") from None
    try:
        return AESGCM(_key(passphrase, salt, n, r, p)).decrypt(nonce, sealed, FORMAT.encode())
    except InvalidTag:
        raise CustodyError("wrong passphrase, or the export was altered") from None
