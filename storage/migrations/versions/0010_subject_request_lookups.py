"""a subject's requests, and a request by its reference

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    with op.batch_alter_table("subject_requests") as batch_op:
        batch_op.create_index("ix_subject_requests_customer_received",
                              ["customer_id", "received_at", "id"], unique=False)
        batch_op.create_index("ix_subject_requests_reference", ["request_reference"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("subject_requests") as batch_op:
        batch_op.drop_index("ix_subject_requests_reference")
        batch_op.drop_index("ix_subject_requests_customer_received")
