"""Signed deletion receipts: proof, verifiable offline with the service's public key, that a
recording's data key was destroyed and its blob deleted.

    {"receipt": {"type", "recording_id", "audio_sha256", "purged_at", "purge_reason",
                 "data_key_destroyed", "blob_deleted"},
     "algorithm": "Ed25519", "key_id": hex, "signature": base64}

The signature covers the canonical JSON of ``receipt`` (UTF-8, keys sorted, no spaces).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from recordings_service.documents import rfc3339
from storage.audit_log import canonical_json
from storage.signing import key_id

RECEIPT_TYPE = "recordings-service/deletion-receipt/v1"


def sign_receipt(key: Ed25519PrivateKey, name: str, recording_id: str, sha256: str,
                 purged_at: datetime, reason: str) -> dict[str, Any]:
    body = {
        "type": RECEIPT_TYPE,
        "recording_id": recording_id,
        "audio_sha256": sha256,
        "purged_at": rfc3339(purged_at),
        "purge_reason": reason,
        "data_key_destroyed": True,
        "blob_deleted": True,
    }
    return {
        "receipt": body,
        "algorithm": "Ed25519",
        "key_id": key_id(name, key.public_key()).hex(),
        "signature": base64.b64encode(key.sign(canonical_json(body))).decode(),
    }


def verify_receipt(receipt: dict[str, Any], public_key: Ed25519PublicKey) -> bool:
    try:
        public_key.verify(base64.b64decode(receipt["signature"]),
                          canonical_json(receipt["receipt"]))
    except (InvalidSignature, KeyError, ValueError, TypeError):
        return False
    return True
