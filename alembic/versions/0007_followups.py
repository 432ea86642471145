"""Follow-up links: the hash of each question's capability token, and a reviewer's public reply to the asker.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("questions") as batch:
        batch.add_column(sa.Column("followup_hash", sa.String(64), nullable=True))
        batch.create_index("ix_questions_followup_hash", ["followup_hash"], unique=True)
    with op.batch_alter_table("review_items") as batch:
        batch.add_column(sa.Column("reply", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review_items") as batch:
        batch.drop_column("reply")
    with op.batch_alter_table("questions") as batch:
        batch.drop_index("ix_questions_followup_hash")
        batch.drop_column("followup_hash")
