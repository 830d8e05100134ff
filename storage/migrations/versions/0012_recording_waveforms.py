"""each recording's waveform, sealed under its data key

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    op.create_table(
        "recording_waveforms",
        sa.Column("recording_id", sa.String(32), sa.ForeignKey("recordings.id"),
                  primary_key=True),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("recording_waveforms")
