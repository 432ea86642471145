"""Follow-up questions: the conversation a question belongs to and its standalone form.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("questions") as batch:
        batch.add_column(sa.Column("conversation_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("standalone_text", sa.Text(), nullable=True))
        batch.create_index("ix_questions_conversation_id", ["conversation_id"])


def downgrade() -> None:
    with op.batch_alter_table("questions") as batch:
        batch.drop_index("ix_questions_conversation_id")
        batch.drop_column("standalone_text")
        batch.drop_column("conversation_id")
