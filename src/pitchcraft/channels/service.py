"""The channels a user can choose: the presets, then their own."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import delete, func, select

from pitchcraft.channels.models import UserChannel
from pitchcraft.channels.presets import BY_ID, PRESETS, Channel
from pitchcraft.core.db import Database
from pitchcraft.core.errors import Invalid, NotFound

MAX_USER_CHANNELS = 50
MAX_NAME_CHARS = 80
MAX_GUIDANCE_CHARS = 1000
MAX_LIMIT_CHARS = 100_000


def _of(row: UserChannel) -> Channel:
    return Channel(row.id, row.name, row.max_chars, row.guidance or "", custom=True)


@dataclass
class Channels:
    db: Database

    def list(self, user_id: int) -> list[Channel]:
        with self.db.session() as s:
            rows = s.scalars(
                select(UserChannel)
                .where(UserChannel.user_id == user_id)
                .order_by(UserChannel.created_at, UserChannel.id)
            )
            return [*PRESETS, *(_of(r) for r in rows)]

    def get(self, user_id: int, channel_id: str) -> Channel:
        """The channel a request names; Invalid (422) when the user has none by that id."""
        if channel_id in BY_ID:
            return BY_ID[channel_id]
        with self.db.session() as s:
            row = s.get(UserChannel, channel_id) if len(channel_id) <= 40 else None
            if row is not None and row.user_id == user_id:
                return _of(row)
        raise Invalid(
            f"Unknown channel {channel_id[:40]!r}: choose one from GET /api/v1/rag/channels.",
            code="unknown_channel",
        )

    def add(self, user_id: int, *, name: str, max_chars: int, guidance: str = "") -> Channel:
        name = " ".join(name.split())
        guidance = " ".join(guidance.split())
        if not name:
            raise Invalid("Give the channel a name.", code="invalid_channel")
        if len(name) > MAX_NAME_CHARS:
            raise Invalid(
                f"A channel name is at most {MAX_NAME_CHARS} characters.", code="invalid_channel"
            )
        if len(guidance) > MAX_GUIDANCE_CHARS:
            raise Invalid(
                f"A channel's guidance is at most {MAX_GUIDANCE_CHARS:,} characters.",
                code="invalid_channel",
            )
        if isinstance(max_chars, bool) or not 1 <= max_chars <= MAX_LIMIT_CHARS:
            raise Invalid(
                f"A channel's limit is from 1 to {MAX_LIMIT_CHARS:,} characters.",
                code="invalid_channel",
            )
        with self.db.session() as s:
            count = s.scalar(
                select(func.count()).select_from(UserChannel).where(UserChannel.user_id == user_id)
            )
            if (count or 0) >= MAX_USER_CHANNELS:
                raise Invalid(
                    f"You have {MAX_USER_CHANNELS} channels of your own already; delete one first.",
                    code="too_many_channels",
                )
            row = UserChannel(
                id=f"custom-{secrets.token_hex(6)}",
                user_id=user_id,
                name=name,
                max_chars=max_chars,
                guidance=guidance,
            )
            s.add(row)
            s.flush()
            return _of(row)

    def delete(self, user_id: int, channel_id: str) -> None:
        with self.db.session() as s:
            gone = s.execute(
                delete(UserChannel).where(
                    UserChannel.id == channel_id[:40], UserChannel.user_id == user_id
                )
            )
            if not getattr(gone, "rowcount", 0):
                raise NotFound("No such channel of yours.", code="channel_not_found")
