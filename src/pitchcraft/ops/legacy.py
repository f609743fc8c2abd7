"""Import the original system's SQLite database (`marketing_mvp.db`)."""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pitchcraft.auth.emails import check_email_characters, normalize_email
from pitchcraft.auth.models import User
from pitchcraft.core.db import Database, utcnow
from pitchcraft.core.errors import Invalid
from pitchcraft.jobs.models import Job
from pitchcraft.templates.models import PromptTemplate

SUCCEEDED = {"completed", "complete", "succeeded", "success", "done", "finished"}
FAILED = {"failed", "error", "errored"}
REQUIRED_TABLES = {"users"}


class LegacyImportError(RuntimeError):
    pass


@dataclass
class ImportReport:
    users_imported: int = 0
    users_existing: int = 0
    users_skipped: int = 0
    templates_imported: int = 0
    templates_existing: int = 0
    jobs_imported: int = 0
    jobs_existing: int = 0
    jobs_skipped: int = 0
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"users:     {self.users_imported} imported, {self.users_existing} already present, "
            f"{self.users_skipped} skipped",
            f"templates: {self.templates_imported} imported, "
            f"{self.templates_existing} already present",
            f"jobs:      {self.jobs_imported} imported, {self.jobs_existing} already present, "
            f"{self.jobs_skipped} skipped",
            *self.notes,
        ]


def _parse_time(value: Any) -> datetime:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return utcnow()
        # The original stored naive UTC timestamps.
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return utcnow()


def _json(value: Any, default: Any) -> Any:
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return default


def _first(item: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if item.get(key) not in (None, ""):
            return item[key]
    return None


def normalize_source(item: Any) -> dict[str, Any]:
    """The original's source entries had no fixed shape; map them onto ours."""
    if not isinstance(item, dict):
        return {
            "document_id": None,
            "filename": None,
            "page": None,
            "snippet": str(item),
            "score": None,
        }
    raw_meta = item.get("metadata")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    merged = {**meta, **item}
    page = _first(merged, "page", "page_number", "slide", "slide_number")
    score = _first(merged, "score", "similarity", "relevance")
    try:
        page = int(page) if page is not None else None
    except (TypeError, ValueError, OverflowError):  # OverflowError: Infinity
        page = None
    try:
        score = float(score) if score is not None else None
    except (TypeError, ValueError):
        score = None
    if score is not None and not math.isfinite(score):
        # The original's json.dumps wrote NaN/Infinity; PostgreSQL's JSON rejects them.
        score = None
    snippet = _first(merged, "snippet", "content", "text", "page_content", "chunk")
    return {
        "document_id": None,
        "filename": _first(merged, "filename", "file_name", "file", "source", "document"),
        "page": page,
        "snippet": str(snippet)[:2000] if snippet is not None else "",
        "score": score,
    }


def _status(raw: Any) -> tuple[str, str | None]:
    value = str(raw or "").strip().lower()
    if value in SUCCEEDED:
        return "succeeded", None
    if value in FAILED:
        return "failed", "Failed in the original system."
    return "failed", f"Still '{raw}' in the original system when it was imported; not resumable."


def _open_legacy(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise LegacyImportError(f"{path} does not exist or is not a file.")
    # as_uri() percent-encodes the path: a raw '#' or '?' in a file name would cut the
    # URI short, silently dropping mode=ro and opening (creating) a different file.
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise LegacyImportError(f"{path} is not a readable SQLite database: {exc}") from exc
    missing = REQUIRED_TABLES - tables
    if missing:
        conn.close()
        raise LegacyImportError(
            f"{path} has no {', '.join(sorted(missing))} table; is it marketing_mvp.db?"
        )
    conn.execute("PRAGMA query_only=ON")
    return conn


def _rows(conn: sqlite3.Connection, table: str) -> list[sqlite3.Row]:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)
    ).fetchone()
    if not exists:
        return []
    return list(conn.execute(f"SELECT * FROM {table} ORDER BY id"))  # noqa: S608 - fixed names


def import_legacy(db: Database, path: Path) -> ImportReport:
    """Bring over users, templates and jobs. Safe to run again: nothing is imported twice."""
    report = ImportReport()
    conn = _open_legacy(path)
    try:
        users, templates, jobs = (
            _rows(conn, "users"),
            _rows(conn, "prompt_templates"),
            _rows(conn, "jobs"),
        )
    finally:
        conn.close()

    with db.session() as s:
        by_legacy_id: dict[Any, int] = {}
        for row in users:
            keys = row.keys()
            email = normalize_email(str(row["email"] or ""))
            hashed = str(row["hashed_password"] or "") if "hashed_password" in keys else ""
            if "@" not in email or not hashed:
                report.users_skipped += 1
                report.notes.append(
                    f"skipped legacy user {row['id']}: missing email or password hash"
                )
                continue
            try:
                check_email_characters(email)
            except Invalid as exc:
                report.users_skipped += 1
                report.notes.append(f"skipped legacy user {row['id']}: {exc.message}")
                continue
            existing = s.scalar(select(User).where(User.email == email))
            if existing is not None and existing.legacy_id == row["id"]:
                by_legacy_id[row["id"]] = existing.id
                report.users_existing += 1
                continue
            if existing is not None:
                # Someone registered this address in Pitchcraft independently; handing them
                # the old account's history would leak it to whoever holds the new account.
                report.users_skipped += 1
                report.notes.append(
                    f"skipped legacy user {row['id']} <{email}>: the address already has a "
                    "Pitchcraft account; its old templates and jobs were not attached"
                )
                continue
            user = User(
                email=email,
                password_hash=hashed,
                is_active=bool(row["is_active"])
                if "is_active" in keys and row["is_active"] is not None
                else True,
                is_subscribed=bool(row["is_subscribed"])
                if "is_subscribed" in keys and row["is_subscribed"]
                else False,
                created_at=_parse_time(row["created_at"] if "created_at" in keys else None),
                legacy_id=row["id"],
            )
            s.add(user)
            s.flush()
            by_legacy_id[row["id"]] = user.id
            report.users_imported += 1

        for row in templates:
            user_id = by_legacy_id.get(row["user_id"])
            if user_id is None or not row["template"]:
                continue
            if (
                s.scalar(select(PromptTemplate.id).where(PromptTemplate.user_id == user_id))
                is not None
            ):
                report.templates_existing += 1
                continue
            keys = row.keys()
            s.add(
                PromptTemplate(
                    user_id=user_id,
                    template=str(row["template"]),
                    updated_at=_parse_time(row["updated_at"] if "updated_at" in keys else None),
                )
            )
            s.flush()
            report.templates_imported += 1

        for row in jobs:
            user_id = by_legacy_id.get(row["user_id"])
            if user_id is None:
                report.jobs_skipped += 1
                continue
            keys = row.keys()
            job_id = (
                str(row["job_id"]) if "job_id" in keys and row["job_id"] else f"legacy-{row['id']}"
            )
            job_id = job_id[:64]
            existing_job = s.get(Job, job_id)
            if existing_job is not None:
                if existing_job.user_id == user_id:
                    report.jobs_existing += 1
                else:
                    report.jobs_skipped += 1
                    report.notes.append(
                        f"skipped legacy job {job_id}: the id belongs to another user"
                    )
                continue
            status, error = _status(row["status"] if "status" in keys else None)
            sources = _json(row["sources"] if "sources" in keys else None, [])
            topics = _json(row["topics"] if "topics" in keys else None, [])
            created = _parse_time(row["created_at"] if "created_at" in keys else None)
            s.add(
                Job(
                    id=job_id,
                    user_id=user_id,
                    kind="refine",
                    status=status,
                    payload={
                        "marketing_text": row["original_request"]
                        if "original_request" in keys
                        else "",
                        "backgrounds": [str(t) for t in topics] if isinstance(topics, list) else [],
                        "imported_from": "marketing_mvp.db",
                    },
                    result={
                        "mode": "llm",
                        "refined_text": row["refined_text"] if "refined_text" in keys else None,
                        "sources": [normalize_source(x) for x in sources]
                        if isinstance(sources, list)
                        else [],
                    },
                    error=error,
                    created_at=created,
                    finished_at=created,
                )
            )
            s.flush()
            report.jobs_imported += 1
    return report
