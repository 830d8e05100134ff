"""Catalog tables (SQLAlchemy Core). Alembic migrations in ``storage/migrations`` build them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

from storage.limits import IDENTIFIER, NAME, PHONE_NUMBER


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the catalog")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

recordings = Table(
    "recordings",
    metadata,
    Column("id", String(32), primary_key=True),
    # Personal fields are nulled when the recording becomes a tombstone.
    Column("call_id", String(IDENTIFIER), unique=True),
    Column("agent_id", String(IDENTIFIER)),
    Column("customer_id", String(IDENTIFIER)),
    Column("phone_number", String(PHONE_NUMBER)),
    Column("queue", String(IDENTIFIER)),
    Column("direction", String(16)),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Column("content_type", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("duration_seconds", Float),
    Column("sha256", String(64), nullable=False),
    Column("blob_name", String(64)),
    # The wrapped data key lives only here: destroying it is the erasure.
    Column("wrapped_dek", LargeBinary),
    Column("key_version", Integer, index=True),
    Column("purge_at", UTCDateTime, index=True),
    Column("state", String(16), nullable=False),
    Column("restriction_reason", Text),
    Column("restriction_placed_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("purged_at", UTCDateTime),
    Column("purge_reason", Text),
    Column("deletion_receipt", Text),
    # Keyed pseudonym of customer_id (HMAC under a server key); kept in the tombstone so a
    # data subject's later request still finds what was purged, without the id itself.
    Column("subject_ref", String(64)),
    # Searches: newest call first, each filter leading an index that ends in the sort key,
    # so that a page (any page: keyset.py) reads what it shows and nothing more. A
    # tombstone's personal fields are NULL, so it leaves the agent, customer and queue ones.
    Index("ix_recordings_started_at_id", "started_at", "id"),
    Index("ix_recordings_agent_started", "agent_id", "started_at", "id"),
    Index("ix_recordings_queue_started", "queue", "started_at", "id"),
    Index("ix_recordings_customer_started", "customer_id", "started_at", "id"),
    Index("ix_recordings_subject_started", "subject_ref", "started_at", "id"),
    Index("ix_recordings_state_started", "state", "started_at", "id"),
    Index("ix_recordings_phone_started", "phone_number", "started_at", "id"),
    # Also, as expressions (migration 0011, recording_search.py): (lower(x), started_at, id)
    # for x in call_id, customer_id, agent_id, queue, which match ids by prefix whatever
    # their case, and (coalesce(duration_seconds, 0.0), id), which sorts by duration.
    # The orphan sweep asks which of 500 blob names the catalog knows; backups walk the
    # blobs in name order.
    Index("ix_recordings_blob_name", "blob_name"),
    # Serves both purge queries (due: state='active' AND purge_at <= now; interrupted:
    # state='purging'), so their cost follows what is due, not the catalog's size.
    Index("ix_recordings_state_purge_at_id", "state", "purge_at", "id"),
)

recording_purposes = Table(
    "recording_purposes",
    metadata,
    Column("recording_id", String(32), ForeignKey("recordings.id"), primary_key=True),
    Column("purpose", String(64), primary_key=True),
    Column("legal_basis", String(32), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("withdrawn_at", UTCDateTime),
    Column("withdrawal_reason", Text),
    # A purpose's recordings, page by page, when its retention changes.
    Index("ix_recording_purposes_purpose_recording", "purpose", "recording_id"),
)

# A recording's waveform (recordings_service/waveform.py), sealed under a key derived from
# its data key; deleted when that key is destroyed. Its own table, so searches and pages
# never carry it.
recording_waveforms = Table(
    "recording_waveforms",
    metadata,
    Column("recording_id", String(32), ForeignKey("recordings.id"), primary_key=True),
    Column("sealed", LargeBinary, nullable=False),
)

# Points or spans a person marked in a call, for a purpose; personal data about the call,
# so they go with the recording (purge, erasure) and into the subject's export.
moments = Table(
    "moments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("recording_id", String(32), ForeignKey("recordings.id"), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("author", String(NAME), nullable=False),
    Column("at_seconds", Float, nullable=False),
    Column("end_seconds", Float),
    Column("note", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_moments_recording_at", "recording_id", "at_seconds", "id"),
)

# A call scored on a quality form. The score, the form and its version and the scored
# answers stay as the agent's quality record; ``notes`` (the text answers and comment,
# personal data about the call) is nulled when the call is purged or erased.
evaluations = Table(
    "evaluations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("recording_id", String(32), ForeignKey("recordings.id"), nullable=False),
    Column("agent_id", String(IDENTIFIER)),
    Column("form", String(64), nullable=False),
    Column("form_version", Integer, nullable=False),
    Column("evaluator", String(NAME), nullable=False),
    Column("score", Float, nullable=False),
    Column("critical_failed", Text, nullable=False),  # JSON list of question ids
    Column("answers", Text, nullable=False),  # JSON: the scored answers
    Column("notes", Text),  # JSON: text answers and comment
    Column("call_started_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # An agent's evaluations over time; a call's evaluations.
    Index("ix_evaluations_agent_created", "agent_id", "created_at", "id"),
    Index("ix_evaluations_recording", "recording_id", "created_at"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("roles", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("expires_at", UTCDateTime),
    # Written at most once a minute per process (not on every request).
    Column("last_used_at", UTCDateTime),
)

# People who sign in (local accounts); machines use tokens.
users = Table(
    "users",
    metadata,
    Column("name", String(NAME), primary_key=True),
    # Argon2id, in its PHC string form (parameters and salt included).
    Column("password_hash", Text, nullable=False),
    Column("roles", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),
    Column("last_sign_in_at", UTCDateTime),
)

# Signed-in people's sessions, server-side so every replica knows them. Only the SHA-256
# of the cookie's value is kept.
sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_name", String(NAME), nullable=False, index=True),
    Column("roles", Text, nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# Single sign-on logins begun and not yet returned (state, nonce, PKCE verifier), shared by
# the replicas: the provider may send the browser back to another one.
oidc_logins = Table(
    "oidc_logins",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("nonce", String(64), nullable=False),
    Column("code_verifier", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Failed sign-ins per account and per client address, for the rate limit.
sign_in_failures = Table(
    "sign_in_failures",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", UTCDateTime, nullable=False),
    Column("locked_until", UTCDateTime),
)

audit_entries = Table(
    "audit_entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    # The canonical JSON exactly as hashed; the columns below are copies for filtering.
    Column("entry", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary, nullable=False),
    Column("prev_hash", LargeBinary, nullable=False),
    Column("chain_hash", LargeBinary, nullable=False),
    # Text: they copy what a request named (a path's recording id, an Access-Purpose
    # header), which may be of any length; the entry is stored whatever it says.
    Column("recording_id", Text, index=True),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("purpose", Text),
    Column("outcome", Text, nullable=False),
    Index("ix_audit_entries_actor_seq", "actor", "seq"),
    Index("ix_audit_entries_action_seq", "action", "seq"),
    # The console's accesses per day: the stream entries of the last days, not all of them.
    Index("ix_audit_entries_action_at", "action", "at"),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("chain_hash", LargeBinary, nullable=False),
    # RFC 6962 Merkle frontier: JSON list of hex subtree roots, largest first.
    Column("frontier", Text, nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary, nullable=False),
    Column("signed_at", UTCDateTime, nullable=False),
    Column("note", Text, nullable=False),
    # Verification reads the checkpoints above the size it starts from.
    Index("ix_audit_checkpoints_size", "size"),
)

# Signed statements of what each verification found (audit_log.Statement): the next one
# starts where the newest left off.
audit_verifications = Table(
    "audit_verifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("size", BigInteger, nullable=False),
    Column("chain_hash", LargeBinary, nullable=False),
    Column("full", Boolean, nullable=False),
    Column("verified_at", UTCDateTime, nullable=False),
    Column("note", Text, nullable=False),
    # The newest full one, however many incremental ones followed it.
    Index("ix_audit_verifications_full_id", "full", "id"),
)

# Signed statements of each audit archive run (storage/audit_archive.py): entries up to
# ``size`` are in the tiles, no longer in audit_entries.
audit_archives = Table(
    "audit_archives",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("size", BigInteger, nullable=False),
    Column("chain_hash", LargeBinary, nullable=False),
    Column("archived_at", UTCDateTime, nullable=False),
    Column("note", Text, nullable=False),
)

# Blobs of purged recordings that a write-once store keeps until its lock lapses: their
# data keys are destroyed (they are noise), and the sweep deletes them when it may.
kept_blobs = Table(
    "kept_blobs",
    metadata,
    Column("blob_name", String(64), primary_key=True),
    Column("recording_id", String(32), nullable=False),
    # NULL: a legal hold in the store keeps it (tried again at every sweep).
    Column("kept_until", UTCDateTime),
    Index("ix_kept_blobs_kept_until", "kept_until"),
)

legal_holds = Table(
    "legal_holds",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("case_reference", String(IDENTIFIER), nullable=False),
    Column("reason", Text, nullable=False),
    Column("placed_at", UTCDateTime, nullable=False),
    Column("placed_by", String(NAME), nullable=False),
    # A hold by data subject also covers recordings uploaded while it stands.
    Column("customer_id", String(IDENTIFIER)),
    Column("released_at", UTCDateTime),
    Column("released_by", String(NAME)),
    Column("release_reason", Text),
    Index("ix_legal_holds_placed_at_id", "placed_at", "id"),
)

legal_hold_recordings = Table(
    "legal_hold_recordings",
    metadata,
    Column("hold_id", String(32), ForeignKey("legal_holds.id"), primary_key=True),
    Column("recording_id", String(32), ForeignKey("recordings.id"), primary_key=True,
           index=True),
)

purge_runs = Table(
    "purge_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("dry_run", Boolean, nullable=False),
    Column("actor", String(NAME), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    # JSON: purged ids, skipped [{id, reason}], retention changes reported by this run.
    Column("purged", Text, nullable=False),
    Column("skipped", Text, nullable=False),
    Column("retention_changes", Text, nullable=False),
    Index("ix_purge_runs_started_at_id", "started_at", "id"),
)

# The retention each purpose was last applied with, so a changed period in the
# configuration is noticed at start and applied to recordings already stored.
purpose_policies = Table(
    "purpose_policies",
    metadata,
    Column("purpose", String(64), primary_key=True),
    Column("legal_basis", String(32), nullable=False),
    Column("retention_months", Integer, nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
)

retention_changes = Table(
    "retention_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("purpose", String(64), nullable=False),
    Column("from_months", Integer),
    Column("to_months", Integer, nullable=False),
    Column("recordings", Integer, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("reported_in_run", String(32)),
)

# The register of data-subject requests (GDPR Art. 12(3): answer within one month).
subject_requests = Table(
    "subject_requests",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("customer_id", String(IDENTIFIER), nullable=False),
    Column("request_reference", String(IDENTIFIER)),
    Column("received_at", UTCDateTime, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime),
    Column("outcome", Text),
    Column("registered_by", String(NAME), nullable=False),
    Index("ix_subject_requests_received_at_id", "received_at", "id"),
    Index("ix_subject_requests_open_due", "completed_at", "due_at"),
    # A subject's requests in the order they arrived; a reference names one request.
    Index("ix_subject_requests_customer_received", "customer_id", "received_at", "id"),
    Index("ix_subject_requests_reference", "request_reference"),
)

# The key hierarchy's catalog half: key-encryption keys (KEKs) and the service's secrets,
# each sealed under a generation of the root key, which stays in its custody (a file or
# an HSM). Every replica sharing the database sees a rotation at once.
key_versions = Table(
    "key_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("root_generation", Integer),
    # NULL once retired: the KEK is destroyed and can unwrap nothing.
    Column("sealed_key", LargeBinary),
    Column("created_at", UTCDateTime, nullable=False),
    Column("retired_at", UTCDateTime),
)

key_secrets = Table(
    "key_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("root_generation", Integer, nullable=False),
    Column("sealed_value", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
