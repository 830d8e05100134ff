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
    UniqueConstraint,
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
    Column("call_id", String(IDENTIFIER)),
    # Which side of the call the audio holds: caller, callee, or mixed (both, the default).
    # (call_id, leg) is the upload's idempotency key (migration 0017).
    Column("leg", String(16), nullable=False, server_default="mixed"),
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
    # Measured on the decoded audio at upload: ok, one_sided (a channel silent throughout),
    # silent; NULL for formats not decoded (waveform.py).
    Column("audio_check", String(16)),
    # Searches: newest call first, each filter leading an index that ends in the sort key,
    # so that a page (any page: keyset.py) reads what it shows and nothing more. A
    # tombstone's personal fields are NULL, so it leaves the agent, customer and queue ones.
    # Both legs of one call are two recordings; it also serves lookups by call id.
    UniqueConstraint("call_id", "leg", name="uq_recordings_call_leg"),
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

# What the service committed to at upload (recordings_service/commitment.py): the Merkle
# root of the audio's salted pieces, as in the upload's audit entry, how it was cut, and
# the key its salts come from, sealed under a key derived from the data key (so it goes
# when that key is destroyed, and is deleted with it).
recording_commitments = Table(
    "recording_commitments",
    metadata,
    Column("recording_id", String(32), ForeignKey("recordings.id"), primary_key=True),
    Column("root", String(64), nullable=False),
    Column("chunks", Integer, nullable=False),
    Column("audio_offset", Integer, nullable=False),
    Column("chunk_bytes", Integer, nullable=False),
    Column("sealed_salt_key", LargeBinary, nullable=False),
    # The upload's audit entry and the log's frontier just before it: with the entries up
    # to a checkpoint, they prove the entry is in the signed log (merkle.inclusion_path).
    Column("log_seq", BigInteger, nullable=False),
    Column("log_frontier", Text, nullable=False),
)

# Redactions (recordings_service/redaction.py): what was replaced, why, and the signed
# receipt; kept after the recording is purged, as the record of what was done to it.
redactions = Table(
    "redactions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("recording_id", String(32), ForeignKey("recordings.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("actor", String(IDENTIFIER), nullable=False),
    Column("reason", String(16), nullable=False),
    Column("fill", String(16), nullable=False),
    Column("spans", Text, nullable=False),  # JSON
    Column("under_hold", Boolean, nullable=False),
    Column("original_root", String(64), nullable=False),
    Column("previous_sha256", String(64), nullable=False),
    Column("sha256", String(64), nullable=False),
    # The committed pieces it changed (JSON list of indices), and every piece's leaf as
    # committed (32 bytes each, in order): a proof gives them, and the salts of the others.
    Column("changed_pieces", Text, nullable=False),
    Column("original_leaves", LargeBinary, nullable=False),
    Column("audit_seq", BigInteger, nullable=False),
    Column("receipt", Text, nullable=False),
    Index("ix_redactions_recording_created", "recording_id", "created_at", "id"),
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
    # The call's queue when it was scored (reports group by it; the call may be gone).
    Column("queue", String(IDENTIFIER)),
    # The current version (a revision after a dispute adds one; evaluation_history keeps
    # every version) and where the conversation with the agent stands.
    Column("version", Integer, nullable=False, server_default="1"),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("updated_at", UTCDateTime),
    # An agent's evaluations over time; a call's evaluations; reports over a period.
    Index("ix_evaluations_agent_created", "agent_id", "created_at", "id"),
    Index("ix_evaluations_recording", "recording_id", "created_at"),
    Index("ix_evaluations_created", "created_at", "id"),
)

# What happened to an evaluation, in order: scored, acknowledged, disputed, revised,
# upheld. A scoring or a revision carries that version's score and answers. ``notes`` and
# ``comment`` are people's words about the call: nulled when the call is purged or erased.
evaluation_history = Table(
    "evaluation_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("evaluation_id", String(32), ForeignKey("evaluations.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("actor", String(NAME), nullable=False),
    Column("score", Float),
    Column("critical_failed", Text),
    Column("answers", Text),
    Column("notes", Text),
    Column("comment", Text),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_evaluation_history_evaluation", "evaluation_id", "id"),
)

# The training library: collections of clips (a span of a recording), shared with agents.
collections = Table(
    "collections",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("description", Text),
    Column("owner", String(NAME), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_collections_created", "created_at", "id"),
)

# A clip's note is about the call: nulled at purge; the clip goes at erasure.
collection_clips = Table(
    "collection_clips",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("collection_id", String(32), ForeignKey("collections.id"), nullable=False),
    Column("recording_id", String(32), ForeignKey("recordings.id"), nullable=False),
    Column("start_seconds", Float, nullable=False),
    Column("end_seconds", Float, nullable=False),
    Column("note", Text),
    Column("added_by", String(NAME), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_collection_clips_collection", "collection_id", "created_at", "id"),
    Index("ix_collection_clips_recording", "recording_id"),
)

collection_shares = Table(
    "collection_shares",
    metadata,
    Column("collection_id", String(32), ForeignKey("collections.id"), primary_key=True),
    Column("agent_id", String(IDENTIFIER), primary_key=True),
    Column("shared_by", String(NAME), nullable=False),
    Column("shared_at", UTCDateTime, nullable=False),
    # The collections shared with an agent.
    Index("ix_collection_shares_agent", "agent_id", "collection_id"),
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
    # The agent a token of role ``agent`` acts as.
    Column("agent_id", String(IDENTIFIER)),
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
    # The agent a person of role ``agent`` is (their own evaluations and calls).
    Column("agent_id", String(IDENTIFIER)),
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
    Column("agent_id", String(IDENTIFIER)),
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
    # Call records older than [coverage] retention_days this run deleted (a count only).
    Column("call_records_purged", Integer, nullable=False, server_default="0"),
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

# Call records from the PBXs: what calls there were, to find those never recorded (or
# recorded short). Personal data (agent, customer, number): purged after
# [coverage] retention_days, erased with the subject.
call_records = Table(
    "call_records",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("source", String(IDENTIFIER), nullable=False),
    Column("call_id", String(IDENTIFIER), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("answered_at", UTCDateTime),
    Column("ended_at", UTCDateTime, nullable=False),
    Column("direction", String(16)),
    Column("agent_id", String(IDENTIFIER)),
    Column("queue", String(IDENTIFIER)),
    Column("customer_id", String(IDENTIFIER)),
    Column("phone_number", String(PHONE_NUMBER)),
    Column("expect_recording", Boolean, nullable=False),
    # pending (not yet past its grace), recorded, missing, short, partial, not_expected
    # (unanswered, or a call the policy does not record).
    Column("status", String(16), nullable=False),
    # The longest recording found for it, in seconds; when it was last matched.
    Column("recorded_seconds", Float),
    Column("checked_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    # A PBX re-sends a record it is unsure was taken: one row per (source, call_id).
    UniqueConstraint("source", "call_id", name="uq_call_records_source_call"),
    # A recording finds its call; the reconciliation finds what became due.
    Index("ix_call_records_call_id", "call_id"),
    Index("ix_call_records_status_ended", "status", "ended_at"),
    # Lists and counts over a period (per status, source, queue): ranges of these, index
    # only for the counts; the purge by age walks the first.
    Index("ix_call_records_started", "started_at", "id"),
    Index("ix_call_records_started_counts", "started_at", "source", "queue", "status"),
    Index("ix_call_records_status_started", "status", "started_at", "id"),
    Index("ix_call_records_source_started", "source", "started_at", "id"),
    Index("ix_call_records_queue_started", "queue", "started_at", "id"),
    Index("ix_call_records_customer", "customer_id"),
)
