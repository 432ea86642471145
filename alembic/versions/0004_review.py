"""Reviewers, decisions on review items, the audit log, idempotent decisions and question vectors.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_items") as batch:
        batch.add_column(sa.Column("assignee", sa.String(100), nullable=True))
        batch.add_column(sa.Column("root_cause", sa.String(32), nullable=True))
        batch.add_column(sa.Column("final_answer", sa.Text(), nullable=True))
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("answered_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("updated_by", sa.String(100), nullable=True))
        batch.add_column(sa.Column("decided_by", sa.String(100), nullable=True))
        batch.add_column(sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key(
            "fk_review_items_answered_by", "review_items", ["answered_by"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_review_items_assignee", ["assignee"])
        batch.create_index("ix_review_items_answered_by", ["answered_by"])
    op.create_table(
        "reviewers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "review_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "item_id", sa.Integer(), sa.ForeignKey("review_items.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "review_idempotency",
        sa.Column("actor", sa.String(100), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("review_items.id", ondelete="CASCADE"), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "question_vectors",
        sa.Column("question_id", sa.Integer(), sa.ForeignKey("questions.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("embedder", sa.String(200), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    for table in ("question_vectors", "review_idempotency", "review_events", "reviewers"):
        op.drop_table(table)
    with op.batch_alter_table("review_items") as batch:
        batch.drop_index("ix_review_items_answered_by")
        batch.drop_index("ix_review_items_assignee")
        batch.drop_constraint("fk_review_items_answered_by", type_="foreignkey")
        for column in (
            "decided_at",
            "decided_by",
            "updated_by",
            "answered_by",
            "reason",
            "final_answer",
            "root_cause",
            "assignee",
        ):
            batch.drop_column(column)
