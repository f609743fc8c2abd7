"""The draft with each correction visible: wrong values replaced, unbacked sentences flagged."""

from __future__ import annotations

from collections.abc import Sequence

from pitchcraft.grounding.model import Claim, DraftPiece


def corrected_draft(claims: Sequence[Claim]) -> list[DraftPiece]:
    """The original sentences in order; a contradicted value becomes the document's value, a
    sentence the documents do not back (or back only in part) is flagged with the reason."""
    pieces: list[DraftPiece] = []
    for k, claim in enumerate(claims):
        if k:
            pieces.append(DraftPiece("equal", " "))
        wrong = [c for c in claim.checks if c.document_value and not c.found]
        wrong = [c for c in wrong if c.text in claim.text]
        if claim.verdict in ("contradicted", "partial") and wrong:
            pos = 0
            for c in sorted(wrong, key=lambda c: claim.text.find(c.text)):
                at = claim.text.find(c.text, pos)
                if at < 0:
                    continue
                if at > pos:
                    pieces.append(DraftPiece("equal", claim.text[pos:at]))
                pieces.append(
                    DraftPiece(
                        "replace",
                        c.text,
                        c.document_value,
                        f"Your documents say {c.document_value}, not {c.text}.",
                    )
                )
                pos = at + len(c.text)
            if pos < len(claim.text):
                pieces.append(DraftPiece("equal", claim.text[pos:]))
        elif claim.verdict in ("unsupported", "partial", "contradicted"):
            pieces.append(DraftPiece("flag", claim.text, None, claim.reason))
        else:
            pieces.append(DraftPiece("equal", claim.text))
    return pieces
