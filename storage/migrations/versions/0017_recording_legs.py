"""recordings name their leg (caller, callee, mixed): (call_id, leg) is unique, not call_id

Revision ID: 0017
Revises: 0016

PostgreSQL swaps the constraint in place. SQLite cannot drop a constraint: the table is
rebuilt the way SQLite documents (https://www.sqlite.org/lang_altertable.html, "making
other kinds of table schema changes"): a new table from the old one's own definition with
the column and constraint changed, the rows copied, the old table dropped, the new one
renamed, every index re-created from its stored definition. The runner turns foreign keys
off for it and checks them before it commits (Database.schema_change), so the tables that
refer to recordings keep their rows. It copies the table once: minutes on millions of
recordings, at the upgrade, while the service is stopped.
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"

_OLD_UNIQUE = re.compile(r"UNIQUE \(call_id\)")
_NEW_UNIQUE = "CONSTRAINT uq_recordings_call_leg UNIQUE (call_id, leg)"
_LEG = "leg VARCHAR(16) DEFAULT 'mixed' NOT NULL"
# As created, and as SQLite writes it back after a rename (quoted).
_CREATE = re.compile(r'^CREATE TABLE "?recordings"? \(')


def _rebuild_sqlite(unique_from: re.Pattern[str], unique_to: str, with_leg: bool) -> None:
    bind = op.get_bind()
    stored = bind.exec_driver_sql(
        "SELECT type, sql FROM sqlite_master WHERE tbl_name = 'recordings' "
        "AND sql IS NOT NULL").all()
    (table_sql,) = [sql for kind, sql in stored if kind == "table"]
    index_sqls = [sql for kind, sql in stored if kind == "index"]
    new_sql, replaced = unique_from.subn(unique_to, table_sql)
    if replaced != 1 or not _CREATE.match(table_sql):
        raise RuntimeError("the recordings table is not the one this migration knows")
    new_sql = _CREATE.sub("CREATE TABLE recordings_new (", new_sql)
    columns = [row[1] for row in bind.exec_driver_sql("PRAGMA table_info(recordings)")]
    kept = [c for c in columns if c != "leg"]
    # Beside the call id it qualifies.
    call_id, with_it = "\n\tcall_id VARCHAR(255), ", f"\n\tcall_id VARCHAR(255), \n\t{_LEG}, "
    before, after = (call_id, with_it) if with_leg else (with_it, call_id)
    if new_sql.count(before) != 1:
        raise RuntimeError("the recordings table is not the one this migration knows")
    new_sql = new_sql.replace(before, after)
    listed = ", ".join(f'"{name}"' for name in kept)  # the table's own column names
    op.execute(new_sql)
    op.execute(f"INSERT INTO recordings_new ({listed}) SELECT {listed} FROM recordings"  # noqa: S608
               )
    op.execute("DROP TABLE recordings")
    op.execute("ALTER TABLE recordings_new RENAME TO recordings")
    for sql in index_sqls:
        op.execute(sql)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(_OLD_UNIQUE, _NEW_UNIQUE, with_leg=True)
        return
    op.add_column("recordings", sa.Column("leg", sa.String(16), nullable=False,
                                          server_default="mixed"))
    op.drop_constraint("recordings_call_id_key", "recordings", type_="unique")
    op.create_unique_constraint("uq_recordings_call_leg", "recordings", ["call_id", "leg"])


def downgrade() -> None:
    # Only while no call has two legs: the old constraint would refuse them.
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(re.compile(re.escape(_NEW_UNIQUE)), "UNIQUE (call_id)",
                        with_leg=False)
        return
    op.drop_constraint("uq_recordings_call_leg", "recordings", type_="unique")
    op.create_unique_constraint("recordings_call_id_key", "recordings", ["call_id"])
    op.drop_column("recordings", "leg")
