"""audit filter columns hold any length

The filter columns copy what a request named (a recording id from the path, the
Access-Purpose header): on PostgreSQL a longer value than VARCHAR(32)/(64) failed the
audit insert, and with it the request (500). SQLite never enforced the lengths.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"

_WIDENED = {"recording_id": sa.String(32), "actor": sa.String(128),
            "action": sa.String(64), "purpose": sa.String(64), "outcome": sa.String(16)}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return  # SQLite does not enforce VARCHAR lengths; nothing to change
    for column, old in _WIDENED.items():
        # VARCHAR to TEXT is binary-compatible in PostgreSQL: no table rewrite.
        op.alter_column("audit_entries", column, type_=sa.Text(), existing_type=old)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for column, old in _WIDENED.items():
        op.alter_column("audit_entries", column, type_=old, existing_type=sa.Text())
