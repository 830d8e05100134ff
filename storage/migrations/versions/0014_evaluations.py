"""calls scored on quality forms

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    op.create_table(
        "evaluations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("recording_id", sa.String(32), sa.ForeignKey("recordings.id"),
                  nullable=False),
        sa.Column("agent_id", sa.String(255)),
        sa.Column("form", sa.String(64), nullable=False),
        sa.Column("form_version", sa.Integer(), nullable=False),
        sa.Column("evaluator", sa.String(128), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("critical_failed", sa.Text(), nullable=False),
        sa.Column("answers", sa.Text(), nullable=False),
        sa.Column("notes", sa.Text()),
        sa.Column("call_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_evaluations_agent_created", "evaluations",
                    ["agent_id", "created_at", "id"])
    op.create_index("ix_evaluations_recording", "evaluations", ["recording_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_evaluations_recording", "evaluations")
    op.drop_index("ix_evaluations_agent_created", "evaluations")
    op.drop_table("evaluations")
