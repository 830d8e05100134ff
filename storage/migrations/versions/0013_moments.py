"""moments marked in a call

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    op.create_table(
        "moments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("recording_id", sa.String(32), sa.ForeignKey("recordings.id"),
                  nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("at_seconds", sa.Float(), nullable=False),
        sa.Column("end_seconds", sa.Float()),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_moments_recording_at", "moments",
                    ["recording_id", "at_seconds", "id"])


def downgrade() -> None:
    op.drop_index("ix_moments_recording_at", "moments")
    op.drop_table("moments")
