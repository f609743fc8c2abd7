"""Builds every adapter from Settings, once per process."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pitchcraft import migrate
from pitchcraft.auth.ratelimit import Throttle
from pitchcraft.auth.security import Passwords, Tokens
from pitchcraft.auth.service import Accounts
from pitchcraft.db import Database
from pitchcraft.persistence import PathReport, ensure_persistent
from pitchcraft.settings import Settings
from pitchcraft.system import stored_jwt_secret

log = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings
    db: Database
    accounts: Accounts
    path_reports: list[PathReport] = field(default_factory=list)

    def close(self) -> None:
        self.db.dispose()


def prepare_storage(settings: Settings) -> list[PathReport]:
    """The persistence guard: raises DataNotPersistent with the fix in its message."""
    return ensure_persistent(settings)


def build(settings: Settings, *, migrate_schema: bool | None = None) -> Container:
    """Check the data location, migrate, and wire the services."""
    reports = prepare_storage(settings)
    db = Database(settings)
    if settings.auto_migrate if migrate_schema is None else migrate_schema:
        before, after = migrate.upgrade(db)
        if before != after:
            log.info("database migrated from %s to %s", before or "empty", after)
    else:
        current, head = migrate.status(db)
        if current != head:
            raise migrate.SchemaOutdated(
                f"The database is at revision {current or 'empty'} but this release needs "
                f"{head}; run `pitchcraft migrate`."
            )
    secret = settings.jwt_secret or stored_jwt_secret(db)
    accounts = Accounts(
        db=db,
        passwords=Passwords(),
        tokens=Tokens(secret, settings.access_token_minutes),
        throttle=Throttle(
            login_per_email=settings.login_rate_limit_per_email,
            login_per_client=settings.login_rate_limit_per_client,
            register_per_client=settings.register_rate_limit_per_client,
            storage_url=settings.rate_limit_storage_url,
        ),
        password_min_length=settings.password_min_length,
        registration_open=settings.registration_open,
    )
    return Container(settings=settings, db=db, accounts=accounts, path_reports=reports)
