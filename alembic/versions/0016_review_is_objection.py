"""review_items.is_objection: a reviewer's word on whether a comment objects to the plan or only asks (null: the
classifier's flag stands), so a neutral question a reviewer marked as such is not counted as an objection.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-17
"""

import sqlalchemy as sa

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_items") as batch:
        batch.add_column(sa.Column("is_objection", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review_items") as batch:
        batch.drop_column("is_objection")
