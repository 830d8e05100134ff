"""Signed deletion receipts: proof, verifiable offline with the service's public key, that a
recording's data key was destroyed and its blob deleted.

    {"receipt": {"type", "recording_id", "audio_sha256", "purged_at", "purge_reason",
                 "data_key_destroyed", "blob_deleted"[, "blob_kept_until"]},
     "algorithm": "Ed25519", "key_id": hex, "signature": base64}

The signature covers the canonical JSON of ``receipt`` (UTF-8, keys sorted, no spaces).
On a write-once store whose lock still keeps the blob, ``blob_deleted`` is false and
``blob_kept_until`` says when the lock lapses (null: a hold in the store): the blob is noise
from the moment its key is destroyed, and the sweep deletes it then.
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
REDACTION_RECEIPT_TYPE = "recordings-service/redaction-receipt/v1"


def sign_receipt(key: Ed25519PrivateKey, name: str, recording_id: str, sha256: str,
                 purged_at: datetime, reason: str, blob_deleted: bool = True,
                 kept_until: datetime | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": RECEIPT_TYPE,
        "recording_id": recording_id,
        "audio_sha256": sha256,
        "purged_at": rfc3339(purged_at),
        "purge_reason": reason,
        "data_key_destroyed": True,
        "blob_deleted": blob_deleted,
    }
    if not blob_deleted:
        body["blob_kept_until"] = None if kept_until is None else rfc3339(kept_until)
    return signed(key, name, body)


def signed(key: Ed25519PrivateKey, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """A receipt: ``body`` and the service's signature over its canonical JSON."""
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
