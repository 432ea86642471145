"""Uploaded job input files in the database (job_files), so every process can run a job and serve its results; an
index on job_rows.text_key, so a re-run finds the review questions earlier jobs made for a comment.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-12
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_files",
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_job_rows_text_key", "job_rows", ["text_key"])


def downgrade() -> None:
    op.drop_index("ix_job_rows_text_key", table_name="job_rows")
    op.drop_table("job_files")
