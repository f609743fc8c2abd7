"""multilingual enrichment state of documents

Revision ID: 0011
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Documents indexed before this revision have no multilingual vectors yet: "pending"
    # (the worker enriches them in the background when MULTILINGUAL_SEARCH is on).
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "multilingual",
                sa.String(length=16),
                server_default="pending",
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column("multilingual_chunks", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("multilingual_chunks")
        batch_op.drop_column("multilingual")
