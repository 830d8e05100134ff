"""call records from the PBXs, for recording coverage; recordings' silence check

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"

INDEXES = {
    "ix_call_records_call_id": ["call_id"],
    "ix_call_records_status_ended": ["status", "ended_at"],
    "ix_call_records_started": ["started_at", "id"],
    "ix_call_records_started_counts": ["started_at", "source", "queue", "status"],
    "ix_call_records_status_started": ["status", "started_at", "id"],
    "ix_call_records_source_started": ["source", "started_at", "id"],
    "ix_call_records_queue_started": ["queue", "started_at", "id"],
    "ix_call_records_customer": ["customer_id"],
}


def upgrade() -> None:
    op.create_table(
        "call_records",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("call_id", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("direction", sa.String(16)),
        sa.Column("agent_id", sa.String(255)),
        sa.Column("queue", sa.String(255)),
        sa.Column("customer_id", sa.String(255)),
        sa.Column("phone_number", sa.String(64)),
        sa.Column("expect_recording", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("recorded_seconds", sa.Float()),
        sa.Column("checked_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("source", "call_id", name="uq_call_records_source_call"),
    )
    for name, columns in INDEXES.items():
        op.create_index(name, "call_records", columns)
    op.add_column("recordings", sa.Column("audio_check", sa.String(16)))
    op.add_column("purge_runs", sa.Column("call_records_purged", sa.Integer(),
                                          nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("purge_runs") as batch:
        batch.drop_column("call_records_purged")
    with op.batch_alter_table("recordings") as batch:
        batch.drop_column("audio_check")
    for name in INDEXES:
        op.drop_index(name, "call_records")
    op.drop_table("call_records")
