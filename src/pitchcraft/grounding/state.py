"""What matching a sentence against one unit of a passage found."""

from __future__ import annotations

from dataclasses import dataclass, field

from pitchcraft.grounding.model import Passage
from pitchcraft.grounding.text import Analysed, Unit


@dataclass
class Hit:
    """Where an item is stated in a unit: the row and the span of the words or value."""

    row: int
    start: int
    end: int
    value: str | None = None


@dataclass
class UnitMatch:
    passage: Passage
    an: Analysed
    unit: Unit
    hits: dict[int, Hit] = field(default_factory=dict)  # item index → where it is stated
    conflicts: dict[int, Hit] = field(default_factory=dict)  # item index → the other value
    negated: bool = False
    score: float = 0.0
    rivals: set[str] = field(default_factory=set)  # other names where the items were found
    negated_hits: dict[int, Hit] = field(default_factory=dict)  # "not considered mandatory"
    opposites: dict[int, Hit] = field(default_factory=dict)  # "rare" where it says "common"


@dataclass
class Context:
    passages: list[Passage]
    analysed: list[Analysed]
    abbr: dict[str, set[str]]
    capitalised: set[str] = field(default_factory=set)
    lower: set[str] = field(default_factory=set)
    lower_stems: set[str] = field(default_factory=set)
