"""`pitchcraft doctor`: everything an operator needs to know about where data lives."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from pitchcraft.core import migrate
from pitchcraft.core.db import Database
from pitchcraft.core.filemodes import exposed_paths, private_roots
from pitchcraft.core.persistence import in_container, inspect_paths, read_mounts
from pitchcraft.llm import LLMConfigError, describe_llm
from pitchcraft.settings import Settings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _gib(n: int | None) -> str:
    return "unknown" if n is None else f"{n / 1024**3:.1f} GiB free"


def run_checks(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    container = in_container(settings, read_mounts())
    checks.append(
        Check(
            "environment",
            True,
            ("container" if container else "host")
            + (" (ALLOW_EPHEMERAL_DATA=true)" if settings.allow_ephemeral_data else ""),
        )
    )
    for r in inspect_paths(settings, create=True):
        ok = r.writable and (r.persistent or settings.allow_ephemeral_data)
        state = "persists" if r.persistent else "DOES NOT PERSIST"
        access = "writable" if r.writable else "NOT writable"
        detail = f"{r.path} — {state}, {r.where}; {access}; {_gib(r.free_bytes)}"
        if not ok and r.problem:
            detail += f"\n        {r.problem}"
        checks.append(Check(r.setting, ok, detail))
    checks.append(_privacy_check(settings))

    try:
        db = Database(settings)
    except Exception as exc:  # e.g. DB_PATH cannot be created: report it, never crash
        checks.append(Check("database", False, f"cannot be opened: {exc}"))
    else:
        checks.extend(_database_checks(settings, db))

    checks.append(Check("vectors", True, f"embedded at {settings.qdrant_dir}"))
    checks.append(_multilingual_check(settings))
    checks.append(_llm_check(settings))
    return checks


def _multilingual_check(settings: Settings) -> Check:
    """Whether the multilingual model loads here. Not loading is no failure of the install:
    the app runs English-only, and says so."""
    from pitchcraft.embedding.multilingual import (
        NAME,
        MultilingualUnavailable,
        load_multilingual,
    )

    if not settings.multilingual_search:
        return Check("multilingual", True, "off (MULTILINGUAL_SEARCH=off): search is English-only")
    try:
        load_multilingual()
    except MultilingualUnavailable as exc:
        return Check("multilingual", True, f"NOT AVAILABLE: {exc}")
    return Check("multilingual", True, f"on: {NAME} loads (German, French, Spanish, ...)")


def _privacy_check(settings: Settings) -> Check:
    exposed = exposed_paths(private_roots(settings))
    if not exposed:
        return Check("permissions", True, "data folders 0700, files 0600: private to this account")
    shown = "\n        ".join(f"{oct(mode)} {path}" for path, mode in exposed[:5])
    more = f"\n        ... and {len(exposed) - 5} more" if len(exposed) > 5 else ""
    return Check(
        "permissions",
        False,
        f"{len(exposed)} data path(s) other local accounts can read or enter:\n        "
        f"{shown}{more}\n        `pitchcraft serve` makes them private at its next start "
        "(or: chmod -R go-rwx on each data folder).",
    )


def _llm_check(settings: Settings) -> Check:
    """The configured model and endpoint; the endpoint is not contacted (a doctor run
    must not spend tokens or wait on a slow model)."""
    try:
        return Check("llm", True, describe_llm(settings))
    except LLMConfigError as exc:
        return Check("llm", False, str(exc))


def _database_checks(settings: Settings, db: Database) -> list[Check]:
    checks: list[Check] = []
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        where = (
            settings.sqlite_file
            if settings.uses_sqlite and not settings.database_url
            else db.engine.url.render_as_string(hide_password=True)
        )
        checks.append(Check("database", True, f"{db.backend} reachable at {where}"))
        try:
            current, head = migrate.status(db)
            if current == head:
                checks.append(Check("schema", True, f"at {current} (latest)"))
            else:
                pending = f"at {current or 'empty'}, latest is {head}"
                checks.append(Check("schema", True, f"{pending}; `serve` or `migrate` applies it"))
        except migrate.SchemaTooNew as exc:
            checks.append(Check("schema", False, str(exc)))
    except Exception as exc:  # any driver error: report it, never crash the doctor
        checks.append(Check("database", False, f"{db.backend} unreachable: {exc}"))
    finally:
        db.dispose()
    return checks
