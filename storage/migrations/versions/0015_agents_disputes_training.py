"""agents, evaluation disputes and versions, the training library

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    # An agent's account, token or session names the agent it is.
    for table in ("users", "tokens", "sessions"):
        op.add_column(table, sa.Column("agent_id", sa.String(255)))
    with op.batch_alter_table("evaluations") as batch:
        batch.add_column(sa.Column("queue", sa.String(255)))
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False,
                                   server_default="1"))
        batch.add_column(sa.Column("status", sa.String(16), nullable=False,
                                   server_default="open"))
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True)))
    op.create_index("ix_evaluations_created", "evaluations", ["created_at", "id"])
    op.create_table(
        "evaluation_history",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("evaluation_id", sa.String(32), sa.ForeignKey("evaluations.id"),
                  nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("score", sa.Float()),
        sa.Column("critical_failed", sa.Text()),
        sa.Column("answers", sa.Text()),
        sa.Column("notes", sa.Text()),
        sa.Column("comment", sa.Text()),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_evaluation_history_evaluation", "evaluation_history",
                    ["evaluation_id", "id"])
    op.create_table(
        "collections",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_collections_created", "collections", ["created_at", "id"])
    op.create_table(
        "collection_clips",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("collection_id", sa.String(32), sa.ForeignKey("collections.id"),
                  nullable=False),
        sa.Column("recording_id", sa.String(32), sa.ForeignKey("recordings.id"),
                  nullable=False),
        sa.Column("start_seconds", sa.Float(), nullable=False),
        sa.Column("end_seconds", sa.Float(), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("added_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_collection_clips_collection", "collection_clips",
                    ["collection_id", "created_at", "id"])
    op.create_index("ix_collection_clips_recording", "collection_clips", ["recording_id"])
    op.create_table(
        "collection_shares",
        sa.Column("collection_id", sa.String(32), sa.ForeignKey("collections.id"),
                  primary_key=True),
        sa.Column("agent_id", sa.String(255), primary_key=True),
        sa.Column("shared_by", sa.String(128), nullable=False),
        sa.Column("shared_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_collection_shares_agent", "collection_shares",
                    ["agent_id", "collection_id"])


def downgrade() -> None:
    op.drop_index("ix_collection_shares_agent", "collection_shares")
    op.drop_table("collection_shares")
    op.drop_index("ix_collection_clips_recording", "collection_clips")
    op.drop_index("ix_collection_clips_collection", "collection_clips")
    op.drop_table("collection_clips")
    op.drop_index("ix_collections_created", "collections")
    op.drop_table("collections")
    op.drop_index("ix_evaluation_history_evaluation", "evaluation_history")
    op.drop_table("evaluation_history")
    op.drop_index("ix_evaluations_created", "evaluations")
    with op.batch_alter_table("evaluations") as batch:
        for column in ("updated_at", "status", "version", "queue"):
            batch.drop_column(column)
    for table in ("sessions", "tokens", "users"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("agent_id")
