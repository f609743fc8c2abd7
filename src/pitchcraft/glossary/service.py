"""Each user's glossary: read, replace, and names from their documents to suggest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.exc import IntegrityError

from pitchcraft.core.db import Database, utcnow
from pitchcraft.glossary.models import GlossaryRow
from pitchcraft.glossary.rules import Glossary, from_stored, parse


@dataclass
class Glossaries:
    db: Database

    def get(self, user_id: int) -> Glossary:
        with self.db.session() as s:
            row = s.get(GlossaryRow, user_id)
            if row is None:
                return Glossary()
            return replace(from_stored(row.data), updated_at=row.updated_at)

    def put(
        self, user_id: int, terms: Sequence[Mapping[str, Any]], banned: Sequence[Any]
    ) -> Glossary:
        """Replace the user's glossary; Invalid (422) names what is wrong, and the
        glossary saved before stays as it was."""
        glossary = parse(terms, banned)
        try:
            return self._put(user_id, glossary)
        except IntegrityError:
            # Two first saves raced on PostgreSQL; the row exists now, so update it.
            return self._put(user_id, glossary)

    def _put(self, user_id: int, glossary: Glossary) -> Glossary:
        with self.db.session() as s:
            row = s.get(GlossaryRow, user_id)
            now = utcnow()
            if row is None:
                row = GlossaryRow(user_id=user_id, data=glossary.as_dict(), updated_at=now)
                s.add(row)
            else:
                row.data = glossary.as_dict()
                row.updated_at = now
            s.flush()
            return replace(glossary, updated_at=now)
