"""initial catalog

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table('audit_checkpoints',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('root_hash', sa.LargeBinary(), nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('audit_entries',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('entry', sa.LargeBinary(), nullable=False),
    sa.Column('leaf_hash', sa.LargeBinary(), nullable=False),
    sa.Column('prev_hash', sa.LargeBinary(), nullable=False),
    sa.Column('chain_hash', sa.LargeBinary(), nullable=False),
    sa.Column('recording_id', sa.String(length=32), nullable=True),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entries_recording_id'), ['recording_id'], unique=False)
        batch_op.create_index('ix_audit_entries_actor_seq', ['actor', 'seq'], unique=False)
        batch_op.create_index('ix_audit_entries_action_seq', ['action', 'seq'], unique=False)

    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('chain_hash', sa.LargeBinary(), nullable=False),
    sa.Column('frontier', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('recordings',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('call_id', sa.String(length=255), nullable=True),
    sa.Column('agent_id', sa.String(length=255), nullable=True),
    sa.Column('customer_id', sa.String(length=255), nullable=True),
    sa.Column('phone_number', sa.String(length=64), nullable=True),
    sa.Column('queue', sa.String(length=255), nullable=True),
    sa.Column('direction', sa.String(length=16), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('content_type', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('duration_seconds', sa.Float(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('blob_name', sa.String(length=64), nullable=True),
    sa.Column('wrapped_dek', sa.LargeBinary(), nullable=True),
    sa.Column('key_version', sa.Integer(), nullable=True),
    sa.Column('purge_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('restriction_reason', sa.Text(), nullable=True),
    sa.Column('restriction_placed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('purge_reason', sa.Text(), nullable=True),
    sa.Column('deletion_receipt', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('call_id')
    )
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.create_index('ix_recordings_created_at_id', ['created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recordings_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recordings_key_version'), ['key_version'], unique=False)
        batch_op.create_index(batch_op.f('ix_recordings_purge_at'), ['purge_at'], unique=False)

    op.create_table('tokens',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('roles', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_table('recording_purposes',
    sa.Column('recording_id', sa.String(length=32), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('legal_basis', sa.String(length=32), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdrawal_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], ),
    sa.PrimaryKeyConstraint('recording_id', 'purpose')
    )
    # The audit chain starts empty: size 0, chain hash of 32 zero bytes, no frontier.
    op.bulk_insert(
        sa.table("audit_head", sa.column("id", sa.Integer), sa.column("size", sa.BigInteger),
                 sa.column("chain_hash", sa.LargeBinary), sa.column("frontier", sa.Text)),
        [{"id": 1, "size": 0, "chain_hash": bytes(32), "frontier": "[]"}],
    )


def downgrade() -> None:
    op.drop_table('recording_purposes')
    op.drop_table('tokens')
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recordings_purge_at'))
        batch_op.drop_index(batch_op.f('ix_recordings_key_version'))
        batch_op.drop_index(batch_op.f('ix_recordings_customer_id'))
        batch_op.drop_index('ix_recordings_created_at_id')

    op.drop_table('recordings')
    op.drop_table('audit_head')
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_entries_recording_id'))
        batch_op.drop_index('ix_audit_entries_actor_seq')
        batch_op.drop_index('ix_audit_entries_action_seq')

    op.drop_table('audit_entries')
    op.drop_table('audit_checkpoints')
