"""Server-wide values kept in the database, and the generated token secret (kept out of it).

The token secret signs every session token and keys the CSRF tokens; whoever holds it can
sign in as anyone. A copy of the database alone (a dump, a stolen replica) must not give it
away, so a generated one lives in its own 0600 file (JWT_SECRET_FILE), and an install that
kept it in the `app_settings` table has it moved to that file at start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

from sqlalchemy import String, Text, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from pitchcraft.core.db import Base, Database
from pitchcraft.core.filemodes import FILE_MODE, write_private
from pitchcraft.settings import Settings

log = logging.getLogger(__name__)

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


def token_secret(db: Database, path: Path) -> str:
    """The generated token secret, from its file: moved there from the database if an
    older install kept it there, created (0600) on the first start otherwise."""
    with db.session() as s:
        legacy = s.scalar(select(AppSetting.value).where(AppSetting.key == JWT_SECRET_KEY))
    if legacy is not None:
        # The database's copy is the one every issued token was signed with.
        if _read_secret(path) != legacy:
            write_private(path, legacy.encode())
        with db.session() as s:
            s.execute(delete(AppSetting).where(AppSetting.key == JWT_SECRET_KEY))
        log.info("moved the token secret out of the database into %s", path)
        return legacy
    existing = _read_secret(path)
    if existing is not None:
        return existing
    return _create_secret(path)


def _read_secret(path: Path) -> str | None:
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    if path.stat().st_mode & 0o077:
        path.chmod(FILE_MODE)
        log.warning("%s was readable by other accounts; it is 0600 now", path)
    return value or None


def _create_secret(path: Path) -> str:
    """A new secret, linked into place only if none appeared meanwhile (processes that
    start together on one data location agree on the first one written)."""
    value = secrets.token_urlsafe(48)
    temp = path.with_name(f".{path.name}.new-{os.getpid()}")
    write_private(temp, value.encode())
    try:
        os.link(temp, path)
    except FileExistsError:
        found = _read_secret(path)
        if found is None:  # an empty file (a crash of a hand-made one): replace it
            write_private(path, value.encode())
        else:
            value = found
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    log.info("generated a token secret in %s", path)
    return value


def server_secret(settings: Settings, db: Database) -> str:
    """The server's secret: JWT_SECRET when set, else the generated one in its own file.
    Token signing and every key derived from it (CSRF, the saved model key) read it here."""
    return settings.jwt_secret or token_secret(db, settings.token_secret_file)
