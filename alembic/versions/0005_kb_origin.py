"""Knowledge documents say who owns them: ingest removes only its own rows, never approved-answer pages.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("kb_documents") as batch:
        batch.add_column(sa.Column("origin", sa.String(16), nullable=False, server_default="knowledge"))
    # Until now an approved answer's page was told apart by its path alone.
    op.execute("UPDATE kb_documents SET origin = 'review' WHERE path LIKE 'review:%'")


def downgrade() -> None:
    with op.batch_alter_table("kb_documents") as batch:
        batch.drop_column("origin")
