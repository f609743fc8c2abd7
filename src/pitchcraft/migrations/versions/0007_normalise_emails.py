"""normalise stored email addresses with NFKC

Sign-in and registration compare addresses after NFKC normalisation; an address stored
before (e.g. in full-width letters) is rewritten to that form so its owner can still sign
in. When the normal form already belongs to another account, the row is left as it is
(two accounts must never merge) and the migration says so in the log.

Revision ID: 0007
Revises: 0010
"""

import logging
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

users = sa.table("users", sa.column("id", sa.Integer), sa.column("email", sa.String))


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(users.c.id, users.c.email)).all()
    taken = {email for _, email in rows}
    for user_id, email in rows:
        normal = unicodedata.normalize("NFKC", email).strip().lower()
        if normal == email:
            continue
        if normal in taken:
            log.warning(
                "user %s: the address normalises to one another account has; left as it was",
                user_id,
            )
            continue
        conn.execute(sa.update(users).where(users.c.id == user_id).values(email=normal))
        taken.discard(email)
        taken.add(normal)


def downgrade() -> None:
    # The original spellings are not kept; the normal forms stay valid for older code.
    pass
