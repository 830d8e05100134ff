"""key-encryption keys and service secrets in the catalog, sealed under the root key

A data directory of the previous release keeps its keys in files beside the catalog;
``recordings-service keys upgrade`` moves them into these tables.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "key_versions",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("root_generation", sa.Integer()),
        sa.Column("sealed_key", sa.LargeBinary()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "key_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("root_generation", sa.Integer(), nullable=False),
        sa.Column("sealed_value", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("key_secrets")
    op.drop_table("key_versions")
