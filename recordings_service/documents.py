"""JSON renderings of catalog rows, as the HTTP contract spells them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from recordings_service import times
from storage.catalog import Recording


def rfc3339(value: datetime | None) -> str | None:
    return None if value is None else times.rfc3339(value)


def recording_json(rec: Recording, now: datetime,
                   allowed_purposes: list[str] | None = None) -> dict[str, Any]:
    """``allowed_purposes``: what the caller may hear the audio for now (given in answers
    to a caller; left out of a subject's export, which is not about a caller)."""
    body = _recording_json(rec, now)
    if allowed_purposes is not None:
        body["allowed_purposes"] = allowed_purposes if rec.state == "active" else []
    return body


def _recording_json(rec: Recording, now: datetime) -> dict[str, Any]:
    if rec.state == "purged":
        return {
            "id": rec.id,
            "state": "purged",
            "purged_at": rfc3339(rec.purged_at),
            "purge_reason": rec.purge_reason,
            "duration_seconds": rec.duration_seconds,
            "content_type": rec.content_type,
            "purposes": [p.purpose for p in rec.purposes],
            "deletion_receipt": (json.loads(rec.deletion_receipt)
                                 if rec.deletion_receipt else None),
        }
    return {
        "id": rec.id,
        "call_id": rec.call_id,
        "leg": rec.leg,
        "started_at": rfc3339(rec.started_at),
        "ended_at": rfc3339(rec.ended_at),
        "direction": rec.direction,
        "agent_id": rec.agent_id,
        "customer_id": rec.customer_id,
        "phone_number": rec.phone_number,
        "queue": rec.queue,
        "content_type": rec.content_type,
        "size_bytes": rec.size_bytes,
        "duration_seconds": rec.duration_seconds,
        "audio_check": rec.audio_check,
        "sha256": rec.sha256,
        "key_version": rec.key_version,
        "purposes": [
            {
                "purpose": p.purpose,
                "legal_basis": p.legal_basis,
                "expires_at": rfc3339(p.expires_at),
                "active": p.withdrawn_at is None and now < p.expires_at,
                "withdrawn_at": rfc3339(p.withdrawn_at),
                "withdrawal_reason": p.withdrawal_reason,
            }
            for p in rec.purposes
        ],
        "purge_at": rfc3339(rec.purge_at),
        "legal_holds": [{"id": hold_id, "case_reference": case}
                        for hold_id, case in rec.legal_holds],
        "restriction": None if rec.restriction_placed_at is None else {
            "reason": rec.restriction_reason,
            "placed_at": rfc3339(rec.restriction_placed_at),
        },
        "state": rec.state,
        "created_at": rfc3339(rec.created_at),
    }
