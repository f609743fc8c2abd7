"""Channels as the API shows and takes them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pitchcraft.channels.presets import Channel
from pitchcraft.channels.service import MAX_GUIDANCE_CHARS, MAX_LIMIT_CHARS, MAX_NAME_CHARS
from pitchcraft.core.validation import CleanStr


class ChannelOut(BaseModel):
    id: str
    name: str
    max_chars: int
    guidance: str
    custom: bool = Field(description="True for a channel the user added.")

    @classmethod
    def of(cls, c: Channel) -> ChannelOut:
        return cls(**c.as_dict())


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: CleanStr = Field(min_length=1, max_length=MAX_NAME_CHARS)
    max_chars: int = Field(ge=1, le=MAX_LIMIT_CHARS)
    guidance: CleanStr = Field(default="", max_length=MAX_GUIDANCE_CHARS)
