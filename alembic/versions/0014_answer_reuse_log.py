"""answer_reuse_log: a question answered with an approved answer is logged against that item, not queued again.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-15
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "answer_reuse_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("review_items.id", ondelete="CASCADE"), nullable=False),
        sa.Column("question_id", sa.Integer(), sa.ForeignKey("questions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("question_id"),
    )
    op.create_index("ix_answer_reuse_log_item_id", "answer_reuse_log", ["item_id"])


def downgrade() -> None:
    op.drop_index("ix_answer_reuse_log_item_id", table_name="answer_reuse_log")
    op.drop_table("answer_reuse_log")
