"""The glossary as the API shows and takes it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pitchcraft.glossary.rules import Glossary

# The request is read loosely here and checked by `rules.parse`, which names the place of
# every problem; these bounds only stop absurd bodies before that.
_LOOSE_MAX = 20_000


class TermIO(BaseModel):
    model_config = ConfigDict(extra="ignore")

    use: str = Field(
        max_length=1000, description="The word or phrase to write, exactly so capitalised."
    )
    avoid: list[str] = Field(
        default_factory=list, max_length=1000, description="Words not to write instead of it."
    )


class GlossaryIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    terms: list[TermIO] = Field(default_factory=list, max_length=_LOOSE_MAX)
    banned: list[str] = Field(default_factory=list, max_length=_LOOSE_MAX)


class TermOut(BaseModel):
    use: str
    avoid: list[str]


class GlossaryOut(BaseModel):
    terms: list[TermOut]
    banned: list[str]
    updated_at: datetime | None = None

    @classmethod
    def of(cls, g: Glossary) -> GlossaryOut:
        return cls(
            terms=[TermOut(use=t.use, avoid=list(t.avoid)) for t in g.terms],
            banned=list(g.banned),
            updated_at=g.updated_at,
        )


class SuggestionOut(BaseModel):
    use: str
    avoid: list[str]
    count: int = Field(description="How often the documents write the name.")
