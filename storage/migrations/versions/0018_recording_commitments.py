"""each recording's commitment to its audio: the root of its salted pieces, the sealed
key of their salts, and where its upload entry sits in the audit log; redactions with
their receipts

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"


def upgrade() -> None:
    op.create_table(
        "recording_commitments",
        sa.Column("recording_id", sa.String(32), sa.ForeignKey("recordings.id"),
                  primary_key=True),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("audio_offset", sa.Integer(), nullable=False),
        sa.Column("chunk_bytes", sa.Integer(), nullable=False),
        sa.Column("sealed_salt_key", sa.LargeBinary(), nullable=False),
        sa.Column("log_seq", sa.BigInteger(), nullable=False),
        sa.Column("log_frontier", sa.Text(), nullable=False),
    )
    op.create_table(
        "redactions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("recording_id", sa.String(32), sa.ForeignKey("recordings.id"),
                  nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("fill", sa.String(16), nullable=False),
        sa.Column("spans", sa.Text(), nullable=False),
        sa.Column("under_hold", sa.Boolean(), nullable=False),
        sa.Column("original_root", sa.String(64), nullable=False),
        sa.Column("previous_sha256", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("changed_pieces", sa.Text(), nullable=False),
        sa.Column("original_leaves", sa.LargeBinary(), nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.Column("receipt", sa.Text(), nullable=False),
    )
    op.create_index("ix_redactions_recording_created", "redactions",
                    ["recording_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_redactions_recording_created", "redactions")
    op.drop_table("redactions")
    op.drop_table("recording_commitments")
