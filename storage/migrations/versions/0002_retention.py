"""retention

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table('legal_holds',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('case_reference', sa.String(length=255), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('placed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('placed_by', sa.String(length=128), nullable=False),
    sa.Column('customer_id', sa.String(length=255), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('released_by', sa.String(length=128), nullable=True),
    sa.Column('release_reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legal_holds_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_legal_holds_placed_at_id', ['placed_at', 'id'], unique=False)

    op.create_table('purge_runs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('purged', sa.Text(), nullable=False),
    sa.Column('skipped', sa.Text(), nullable=False),
    sa.Column('retention_changes', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('purge_runs', schema=None) as batch_op:
        batch_op.create_index('ix_purge_runs_started_at_id', ['started_at', 'id'], unique=False)

    op.create_table('purpose_policies',
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('legal_basis', sa.String(length=32), nullable=False),
    sa.Column('retention_months', sa.Integer(), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('purpose')
    )
    op.create_table('retention_changes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('from_months', sa.Integer(), nullable=True),
    sa.Column('to_months', sa.Integer(), nullable=False),
    sa.Column('recordings', sa.Integer(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reported_in_run', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('legal_hold_recordings',
    sa.Column('hold_id', sa.String(length=32), nullable=False),
    sa.Column('recording_id', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['hold_id'], ['legal_holds.id'], ),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], ),
    sa.PrimaryKeyConstraint('hold_id', 'recording_id')
    )
    with op.batch_alter_table('legal_hold_recordings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legal_hold_recordings_recording_id'), ['recording_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('legal_hold_recordings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_legal_hold_recordings_recording_id'))

    op.drop_table('legal_hold_recordings')
    op.drop_table('retention_changes')
    op.drop_table('purpose_policies')
    with op.batch_alter_table('purge_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_purge_runs_started_at_id')

    op.drop_table('purge_runs')
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.drop_index('ix_legal_holds_placed_at_id')
        batch_op.drop_index(batch_op.f('ix_legal_holds_customer_id'))

    op.drop_table('legal_holds')
