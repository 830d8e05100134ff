"""indexes for every search (newest call first) and page of a purpose, verification
statements, blobs a write-once store keeps after purge

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

_SEARCH_INDEXES = {
    "ix_recordings_started_at_id": ["started_at", "id"],
    "ix_recordings_agent_started": ["agent_id", "started_at", "id"],
    "ix_recordings_queue_started": ["queue", "started_at", "id"],
    "ix_recordings_customer_started": ["customer_id", "started_at", "id"],
    "ix_recordings_subject_started": ["subject_ref", "started_at", "id"],
    "ix_recordings_state_started": ["state", "started_at", "id"],
    "ix_recordings_blob_name": ["blob_name"],
}


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch_op:
        for name, columns in _SEARCH_INDEXES.items():
            batch_op.create_index(name, columns, unique=False)
        # Led by the new ones (customer, subject) or no longer read (upload order).
        batch_op.drop_index("ix_recordings_customer_id")
        batch_op.drop_index("ix_recordings_subject_ref")
        batch_op.drop_index("ix_recordings_created_at_id")
    with op.batch_alter_table("recording_purposes") as batch_op:
        batch_op.create_index("ix_recording_purposes_purpose_recording",
                              ["purpose", "recording_id"], unique=False)
    with op.batch_alter_table("audit_checkpoints") as batch_op:
        batch_op.create_index("ix_audit_checkpoints_size", ["size"], unique=False)
    with op.batch_alter_table("audit_entries") as batch_op:
        batch_op.create_index("ix_audit_entries_action_at", ["action", "at"], unique=False)
    op.create_table(
        "audit_verifications",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chain_hash", sa.LargeBinary(), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
    )
    op.create_index("ix_audit_verifications_full_id", "audit_verifications", ["full", "id"])
    op.create_table(
        "kept_blobs",
        sa.Column("blob_name", sa.String(64), primary_key=True),
        sa.Column("recording_id", sa.String(32), nullable=False),
        sa.Column("kept_until", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_kept_blobs_kept_until", "kept_blobs", ["kept_until"])


def downgrade() -> None:
    op.drop_table("kept_blobs")
    op.drop_table("audit_verifications")
    with op.batch_alter_table("audit_entries") as batch_op:
        batch_op.drop_index("ix_audit_entries_action_at")
    with op.batch_alter_table("audit_checkpoints") as batch_op:
        batch_op.drop_index("ix_audit_checkpoints_size")
    with op.batch_alter_table("recording_purposes") as batch_op:
        batch_op.drop_index("ix_recording_purposes_purpose_recording")
    with op.batch_alter_table("recordings") as batch_op:
        batch_op.create_index("ix_recordings_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_recordings_subject_ref", ["subject_ref"], unique=False)
        batch_op.create_index("ix_recordings_customer_id", ["customer_id"], unique=False)
        for name in _SEARCH_INDEXES:
            batch_op.drop_index(name)
