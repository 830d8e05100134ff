"""searches by phone number, sorted by duration, and ids by case-insensitive prefix

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"

# Expression indexes: the queries (storage/recording_search.py) use the same expressions.
PREFIXED = ("call_id", "customer_id", "agent_id", "queue")


def _key(column: str) -> str:
    # PostgreSQL compares in the "C" collation, so a prefix is a range of code points.
    if op.get_bind().dialect.name == "postgresql":
        return f'(lower({column}) COLLATE "C")'
    return f"lower({column})"


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch_op:
        batch_op.create_index("ix_recordings_phone_started",
                              ["phone_number", "started_at", "id"], unique=False)
    op.execute("CREATE INDEX ix_recordings_duration_id "
               "ON recordings (coalesce(duration_seconds, 0.0), id)")
    for column in PREFIXED:
        op.execute(f"CREATE INDEX ix_recordings_{column}_key "
                   f"ON recordings ({_key(column)}, started_at, id)")


def downgrade() -> None:
    for column in PREFIXED:
        op.execute(f"DROP INDEX ix_recordings_{column}_key")
    op.execute("DROP INDEX ix_recordings_duration_id")
    with op.batch_alter_table("recordings") as batch_op:
        batch_op.drop_index("ix_recordings_phone_started")
