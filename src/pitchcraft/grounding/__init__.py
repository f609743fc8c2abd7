"""Claim checking: is each sentence of marketing copy stated by the user's own documents?

Rule-based and pure Python: numbers, dates, names and content words are matched as values and
stems, and must co-occur in one passage sentence (or table block) to count as support.
"""

from pitchcraft.grounding.claims import check_claims
from pitchcraft.grounding.draft import corrected_draft
from pitchcraft.grounding.model import Check, Claim, DraftPiece, Evidence, Passage
from pitchcraft.grounding.text import split_sentences

__all__ = [
    "Check",
    "Claim",
    "DraftPiece",
    "Evidence",
    "Passage",
    "check_claims",
    "corrected_draft",
    "split_sentences",
]
