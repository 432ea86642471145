"""Bulk classification jobs and their per-row results.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("public_id", sa.String(36), nullable=False, unique=True, index=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("input_path", sa.Text(), nullable=False),
        sa.Column("input_name", sa.String(255), nullable=False),
        sa.Column("input_sha256", sa.String(64), nullable=False, index=True),
        sa.Column("output_path", sa.Text(), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("done_rows", sa.Integer(), nullable=False),
        sa.Column("error_rows", sa.Integer(), nullable=False),
        sa.Column("review_rows", sa.Integer(), nullable=False),
        sa.Column("unique_texts", sa.Integer(), nullable=False),
        sa.Column("llm_calls", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "job_rows",
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("row_index", sa.Integer(), primary_key=True),
        sa.Column("text_key", sa.String(32), nullable=True),
        sa.Column("department", sa.String(200), nullable=True),
        sa.Column("root_cause", sa.String(32), nullable=True),
        sa.Column("secondary_cause", sa.String(32), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("is_objection", sa.Boolean(), nullable=True),
        sa.Column("needs_review", sa.Boolean(), nullable=True),
        sa.Column("matched_doc_id", sa.String(128), nullable=True),
        sa.Column("matched_title", sa.Text(), nullable=True),
        sa.Column("suggested_answer", sa.Text(), nullable=True),
        sa.Column("classifier", sa.String(16), nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("prompt_id", sa.String(64), nullable=True),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "question_id", sa.Integer(), sa.ForeignKey("questions.id", ondelete="SET NULL"), nullable=True
        ),
    )
    op.create_index("ix_job_rows_job_text_key", "job_rows", ["job_id", "text_key"])


def downgrade() -> None:
    op.drop_index("ix_job_rows_job_text_key", table_name="job_rows")
    op.drop_table("job_rows")
    op.drop_table("jobs")
