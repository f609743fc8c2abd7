"""What the checker returns: a verdict per sentence with its evidence and checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["supported", "partial", "unsupported", "contradicted"]
CheckKind = Literal["number", "date", "name", "term"]


@dataclass(frozen=True)
class Passage:
    """A numbered source passage; `label` says where it is from ("memo.pdf, page 3")."""

    n: int
    text: str
    label: str = ""


@dataclass(frozen=True)
class Evidence:
    n: int
    quote: str  # verbatim from passage n


@dataclass(frozen=True)
class Check:
    kind: CheckKind
    text: str
    found: bool
    document_value: str | None = None


@dataclass
class Claim:
    text: str
    verdict: Verdict
    reason: str
    evidence: list[Evidence] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "verdict": self.verdict,
            "reason": self.reason,
            "evidence": [{"n": e.n, "quote": e.quote} for e in self.evidence],
            "checks": [
                {
                    "kind": c.kind,
                    "text": c.text,
                    "found": c.found,
                    "document_value": c.document_value,
                }
                for c in self.checks
            ],
        }


@dataclass(frozen=True)
class DraftPiece:
    op: Literal["equal", "replace", "flag"]
    text: str
    new: str | None = None
    reason: str | None = None
