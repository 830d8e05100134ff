"""local accounts for people; token expiry and last use

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True)),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True)),
    )
    with op.batch_alter_table("tokens") as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch_op:
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("expires_at")
    op.drop_table("users")
