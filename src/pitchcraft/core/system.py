"""Server-wide values kept in the database, such as the generated token secret."""

from __future__ import annotations

import secrets

from sqlalchemy import String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from pitchcraft.core.db import Base, Database
from pitchcraft.settings import Settings

JWT_SECRET_KEY = "jwt_secret"  # noqa: S105 - a row key, not a secret


class AppSetting(Base):
    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


def get_or_create_value(db: Database, key: str, make: str) -> str:
    """Return the stored value for key, storing `make` first if there is none.

    Replicas starting together race on the insert; the loser reads the winner's value.
    """
    with db.session() as s:
        existing = s.scalar(select(AppSetting.value).where(AppSetting.key == key))
        if existing is not None:
            return existing
    try:
        with db.session() as s:
            s.add(AppSetting(key=key, value=make))
        return make
    except IntegrityError:
        with db.session() as s:
            value = s.scalar(select(AppSetting.value).where(AppSetting.key == key))
            assert value is not None
            return value


def stored_jwt_secret(db: Database) -> str:
    return get_or_create_value(db, JWT_SECRET_KEY, secrets.token_urlsafe(48))


def server_secret(settings: Settings, db: Database) -> str:
    """The server's secret: JWT_SECRET when set, else the one generated into the database.
    Token signing and every key derived from it (CSRF, the saved model key) read it here."""
    return settings.jwt_secret or stored_jwt_secret(db)
