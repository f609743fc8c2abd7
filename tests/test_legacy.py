"""Importing the original system's marketing_mvp.db, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pitchcraft.auth.models import User
from pitchcraft.container import Container
from pitchcraft.jobs.models import Job
from pitchcraft.ops.legacy import LegacyImportError, import_legacy
from pitchcraft.templates.models import PromptTemplate

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"
SOURCE_KEYS = {"document_id", "filename", "page", "snippet", "score"}

# The original schema, as its SQLAlchemy models created it.
LEGACY_SCHEMA = """
CREATE TABLE users (
    id INTEGER NOT NULL PRIMARY KEY,
    email VARCHAR,
    hashed_password VARCHAR,
    is_active BOOLEAN,
    is_subscribed BOOLEAN,
    created_at DATETIME
);
CREATE UNIQUE INDEX ix_users_email ON users (email);
CREATE TABLE prompt_templates (
    id INTEGER NOT NULL PRIMARY KEY,
    user_id INTEGER REFERENCES users (id),
    template TEXT,
    updated_at DATETIME
);
CREATE TABLE jobs (
    id INTEGER NOT NULL PRIMARY KEY,
    job_id VARCHAR UNIQUE,
    user_id INTEGER REFERENCES users (id),
    status VARCHAR,
    refined_text TEXT,
    sources JSON,
    original_request TEXT,
    topics JSON,
    created_at DATETIME
);
"""


@dataclass(frozen=True)
class LegacyUser:
    id: int
    email: str
    password: str
    is_active: bool
    is_subscribed: bool
    created_at: str


@dataclass(frozen=True)
class LegacyJob:
    id: int
    job_id: str
    user_id: int
    status: str
    refined_text: str | None
    sources: str | None
    original_request: str
    topics: str | None
    created_at: str


ALICE = LegacyUser(
    1, "Alice.Legacy@Example.COM", "legacy-pass-1", True, True, "2023-11-02 08:15:30.500000"
)
# 100 bytes: the original's bcrypt only ever looked at the first 72 (all 'x').
LONG_PASSWORD = "x" * 80 + "tail-of-long-pass-12"
LONG = LegacyUser(2, "long@example.com", LONG_PASSWORD, True, False, "2024-01-15 10:00:00")
INACTIVE = LegacyUser(
    3, "inactive@example.com", "inactive-pass", False, False, "2024-02-01 00:00:00"
)
NO_EMAIL = LegacyUser(4, "", "no-email-pass", True, False, "2024-02-02 00:00:00")
LEGACY_USERS = (ALICE, LONG, INACTIVE, NO_EMAIL)
IMPORTABLE_USERS = (ALICE, LONG, INACTIVE)

ALICE_TEMPLATE = "You are a B2B copywriter. Rewrite for {audience}; keep it under 120 words."
TEMPLATE_UPDATED = "2024-04-30 09:00:00.250000"

BROCHURE_SOURCES = [
    {
        "filename": "brochure.pdf",
        "page": 3,
        "content": "Zero-trust access for every branch office.",
        "score": 0.82,
    },
    {"filename": "pricing.docx", "page": None, "content": "Flat per-seat pricing.", "score": 0.4},
]
LANGCHAIN_SOURCES = [
    {
        "page_content": "Our platform cut onboarding time by 40%.",
        "metadata": {"source": "deck.pptx", "page": 2},
    }
]

JOBS = (
    LegacyJob(
        1,
        "5d0c7d52-9f6e-4a57-9a62-2d1c1f0a0001",
        ALICE.id,
        "completed",
        "Secure every branch with zero-trust access.",
        json.dumps(BROCHURE_SOURCES),
        "We sell firewalls.",
        json.dumps(["cybersecurity", "SaaS"]),
        "2024-05-01 12:00:00.123456",
    ),
    LegacyJob(
        2,
        "5d0c7d52-9f6e-4a57-9a62-2d1c1f0a0002",
        LONG.id,
        "completed",
        "Onboard customers in days, not weeks.",
        json.dumps(LANGCHAIN_SOURCES),
        "Our onboarding is fast.",
        json.dumps(["healthcare"]),
        "2024-05-02 08:30:00",
    ),
    LegacyJob(
        3,
        "5d0c7d52-9f6e-4a57-9a62-2d1c1f0a0003",
        ALICE.id,
        "failed",
        None,
        None,
        "This one failed.",
        json.dumps([]),
        "2024-05-03 09:00:00.000001",
    ),
    LegacyJob(
        4,
        "5d0c7d52-9f6e-4a57-9a62-2d1c1f0a0004",
        ALICE.id,
        "processing",
        None,
        json.dumps([]),
        "This one never finished.",
        json.dumps(["retail"]),
        "2024-05-04 10:00:00",
    ),
    LegacyJob(
        5,
        "5d0c7d52-9f6e-4a57-9a62-2d1c1f0a0005",
        INACTIVE.id,
        "completed",
        "Text whose sources were garbled.",
        "{not json",
        "Garbled sources.",
        json.dumps(["finance"]),
        "2024-05-05 11:00:00",
    ),
    # Belongs to the user without an email, who is skipped: so is the job.
    LegacyJob(
        6,
        "5d0c7d52-9f6e-4a57-9a62-2d1c1f0a0006",
        NO_EMAIL.id,
        "completed",
        "Orphan.",
        json.dumps([]),
        "Orphan request.",
        json.dumps([]),
        "2024-05-06 12:00:00",
    ),
)
IMPORTABLE_JOBS = tuple(j for j in JOBS if j.user_id != NO_EMAIL.id)
SKIPPED_JOBS = tuple(j for j in JOBS if j.user_id == NO_EMAIL.id)


def legacy_hash(password: str) -> str:
    # Old bcrypt silently used only the first 72 bytes; bcrypt 5 refuses more, so truncate.
    return bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(rounds=4)).decode()


def build_legacy_db(path: Path) -> Path:
    """A marketing_mvp.db in the original schema, with real bcrypt hashes."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(LEGACY_SCHEMA)
        conn.executemany(
            "INSERT INTO users (id, email, hashed_password, is_active, is_subscribed, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    u.id,
                    u.email,
                    legacy_hash(u.password),
                    int(u.is_active),
                    int(u.is_subscribed),
                    u.created_at,
                )
                for u in LEGACY_USERS
            ],
        )
        conn.executemany(
            "INSERT INTO prompt_templates (id, user_id, template, updated_at) VALUES (?, ?, ?, ?)",
            [
                (1, ALICE.id, ALICE_TEMPLATE, TEMPLATE_UPDATED),
                # The skipped user's template has no one to go to.
                (2, NO_EMAIL.id, "Orphan template.", TEMPLATE_UPDATED),
            ],
        )
        conn.executemany(
            "INSERT INTO jobs (id, job_id, user_id, status, refined_text, sources,"
            " original_request, topics, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    j.id,
                    j.job_id,
                    j.user_id,
                    j.status,
                    j.refined_text,
                    j.sources,
                    j.original_request,
                    j.topics,
                    j.created_at,
                )
                for j in JOBS
            ],
        )
        conn.commit()
    finally:
        conn.close()
    return path


def naive_utc(text: str) -> datetime:
    """The original's naive timestamps were UTC."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f" if "." in text else "%Y-%m-%d %H:%M:%S")


def as_utc(text: str) -> datetime:
    return naive_utc(text).replace(tzinfo=UTC)


def assert_utc(value: datetime, expected: str) -> None:
    assert value.utcoffset() == timedelta(0), value
    assert value == as_utc(expected)


@pytest.fixture
def legacy_db(tmp_path: Path) -> Path:
    return build_legacy_db(tmp_path / "marketing_mvp.db")


@pytest.fixture
def local_time_not_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run with a local zone far from UTC, so treating naive times as local would show."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    assert time.timezone != 0
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def container(client: TestClient) -> Container:
    c: Container = client.app.state.container  # type: ignore[attr-defined]
    return c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client: TestClient, email: str, password: str) -> Any:
    return client.post(LOGIN, json={"email": email, "password": password})


def stored_hash(container: Container, email: str) -> str:
    with container.db.session() as s:
        value = s.scalar(select(User.password_hash).where(User.email == email.lower()))
    assert value is not None, f"no user {email}"
    return value


def count(container: Container, model: type[Any]) -> int:
    with container.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


# --- import and idempotency -------------------------------------------------------------


def test_import_reports_counts_and_is_idempotent(container: Container, legacy_db: Path) -> None:
    first = import_legacy(container.db, legacy_db)
    assert (
        first.users_imported,
        first.users_existing,
        first.users_skipped,
        first.templates_imported,
        first.templates_existing,
        first.jobs_imported,
        first.jobs_existing,
        first.jobs_skipped,
    ) == (len(IMPORTABLE_USERS), 0, 1, 1, 0, len(IMPORTABLE_JOBS), 0, len(SKIPPED_JOBS))
    assert any(f"legacy user {NO_EMAIL.id}" in note for note in first.notes), first.notes
    assert count(container, User) == len(IMPORTABLE_USERS)
    assert count(container, PromptTemplate) == 1
    assert count(container, Job) == len(IMPORTABLE_JOBS)

    second = import_legacy(container.db, legacy_db)
    assert (
        second.users_imported,
        second.users_existing,
        second.users_skipped,
        second.templates_imported,
        second.templates_existing,
        second.jobs_imported,
        second.jobs_existing,
        second.jobs_skipped,
    ) == (0, len(IMPORTABLE_USERS), 1, 0, 1, 0, len(IMPORTABLE_JOBS), len(SKIPPED_JOBS))
    assert count(container, User) == len(IMPORTABLE_USERS)
    assert count(container, PromptTemplate) == 1
    assert count(container, Job) == len(IMPORTABLE_JOBS)


def words(kind: str, imported: int, existing: int, skipped: int | None = None) -> list[str]:
    """One count line of the report, split into words."""
    line = [f"{kind}:", str(imported), "imported,", str(existing), "already", "present"]
    if skipped is not None:
        line[-1] += ","
        line += [str(skipped), "skipped"]
    return line


N_USERS, N_JOBS, N_SKIPPED_JOBS = len(IMPORTABLE_USERS), len(IMPORTABLE_JOBS), len(SKIPPED_JOBS)
FIRST_RUN = [
    words("users", N_USERS, 0, 1),
    words("templates", 1, 0),
    words("jobs", N_JOBS, 0, N_SKIPPED_JOBS),
]
SECOND_RUN = [
    words("users", 0, N_USERS, 1),
    words("templates", 0, 1),
    words("jobs", 0, N_JOBS, N_SKIPPED_JOBS),
]


def test_report_lines_show_the_counts(container: Container, legacy_db: Path) -> None:
    lines = import_legacy(container.db, legacy_db).lines()
    assert [line.split() for line in lines[:3]] == FIRST_RUN
    assert any(f"legacy user {NO_EMAIL.id}" in line for line in lines[3:]), lines


# --- passwords ---------------------------------------------------------------------------


def test_legacy_password_logs_in_and_is_rehashed_to_argon2id(
    client: TestClient, container: Container, legacy_db: Path
) -> None:
    import_legacy(container.db, legacy_db)
    assert stored_hash(container, ALICE.email).startswith("$2b$")

    # The original email's case doesn't matter; the old password works.
    r = login(client, ALICE.email, ALICE.password)
    assert r.status_code == 200, r.text
    me = client.get(ME, headers=auth(r.json()["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["email"] == ALICE.email.lower()

    rehashed = stored_hash(container, ALICE.email)
    assert rehashed.startswith("$argon2id$"), rehashed

    again = login(client, ALICE.email.lower(), ALICE.password)
    assert again.status_code == 200, again.text
    assert stored_hash(container, ALICE.email) == rehashed  # argon2id is current: no rehash

    wrong = login(client, ALICE.email, ALICE.password + "x")
    assert wrong.status_code == 401, wrong.text


def test_long_password_user_logs_in_with_the_full_password(
    client: TestClient, container: Container, legacy_db: Path
) -> None:
    assert len(LONG_PASSWORD.encode()) == 100
    import_legacy(container.db, legacy_db)
    assert stored_hash(container, LONG.email).startswith("$2b$")

    r = login(client, LONG.email, LONG_PASSWORD)
    assert r.status_code == 200, r.text
    assert stored_hash(container, LONG.email).startswith("$argon2id$")
    again = login(client, LONG.email, LONG_PASSWORD)
    assert again.status_code == 200, again.text

    # The new hash covers the whole password, not just the 72 bytes bcrypt looked at.
    prefix_only = login(client, LONG.email, LONG_PASSWORD.encode()[:72].decode())
    assert prefix_only.status_code == 401, prefix_only.text


def test_inactive_user_cannot_log_in(
    client: TestClient, container: Container, legacy_db: Path
) -> None:
    import_legacy(container.db, legacy_db)
    r = login(client, INACTIVE.email, INACTIVE.password)
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "invalid_credentials"
    assert stored_hash(container, INACTIVE.email).startswith("$2b$")


def test_existing_user_with_same_email_is_not_overwritten(
    client: TestClient, container: Container, legacy_db: Path
) -> None:
    own_password = "pitchcraft-own-1"
    # Registered before the import, with the email in yet another case.
    r = client.post(
        "/api/v1/auth/register", json={"email": ALICE.email.swapcase(), "password": own_password}
    )
    assert r.status_code == 201, r.text
    own_hash = stored_hash(container, ALICE.email)

    report = import_legacy(container.db, legacy_db)
    assert (report.users_imported, report.users_existing, report.users_skipped) == (
        len(IMPORTABLE_USERS) - 1,
        0,
        2,
    )
    assert any(ALICE.email.lower() in note for note in report.notes)
    assert count(container, User) == len(IMPORTABLE_USERS)
    assert stored_hash(container, ALICE.email) == own_hash
    with container.db.session() as s:
        alice = s.scalar(select(User).where(User.email == ALICE.email.lower()))
    assert alice is not None
    assert alice.is_subscribed is False  # the legacy row's flags were not copied over either
    with container.db.session() as s:
        # Nor the old account's history: the new account's holder may be someone else.
        assert s.scalar(select(PromptTemplate).where(PromptTemplate.user_id == alice.id)) is None
        assert s.scalars(select(Job).where(Job.user_id == alice.id)).all() == []

    assert login(client, ALICE.email, own_password).status_code == 200
    legacy = login(client, ALICE.email, ALICE.password)
    assert legacy.status_code == 401, legacy.text


# --- what lands in the database ----------------------------------------------------------


@pytest.mark.usefixtures("local_time_not_utc")
def test_imported_users_keep_flags_and_utc_timestamps(
    container: Container, legacy_db: Path
) -> None:
    import_legacy(container.db, legacy_db)
    with container.db.session() as s:
        users = {u.email: u for u in s.scalars(select(User))}
    assert set(users) == {u.email.lower() for u in IMPORTABLE_USERS}
    for legacy in IMPORTABLE_USERS:
        user = users[legacy.email.lower()]
        assert user.is_active is legacy.is_active, legacy.email
        assert user.is_subscribed is legacy.is_subscribed, legacy.email
        assert_utc(user.created_at, legacy.created_at)
        assert user.token_version == 0


@pytest.mark.usefixtures("local_time_not_utc")
def test_imported_template_belongs_to_its_user(container: Container, legacy_db: Path) -> None:
    import_legacy(container.db, legacy_db)
    with container.db.session() as s:
        alice_id = s.scalar(select(User.id).where(User.email == ALICE.email.lower()))
        templates = list(s.scalars(select(PromptTemplate)))
    assert len(templates) == 1
    (template,) = templates
    assert template.user_id == alice_id
    assert template.template == ALICE_TEMPLATE
    assert_utc(template.updated_at, TEMPLATE_UPDATED)


@pytest.mark.usefixtures("local_time_not_utc")
def test_imported_jobs_are_mapped(container: Container, legacy_db: Path) -> None:
    import_legacy(container.db, legacy_db)
    with container.db.session() as s:
        ids = {u.email: u.id for u in s.scalars(select(User))}
        jobs = {j.id: j for j in s.scalars(select(Job))}
    user_id = {u.id: ids[u.email.lower()] for u in IMPORTABLE_USERS}
    assert set(jobs) == {j.job_id for j in IMPORTABLE_JOBS}

    for legacy in IMPORTABLE_JOBS:
        job = jobs[legacy.job_id]
        assert job.user_id == user_id[legacy.user_id], legacy.job_id
        assert job.kind == "refine"
        assert_utc(job.created_at, legacy.created_at)
        assert job.payload["marketing_text"] == legacy.original_request
        assert job.payload["backgrounds"] == json.loads(legacy.topics or "[]")
        assert job.result is not None
        assert job.result["refined_text"] == legacy.refined_text
        for source in job.result["sources"]:
            assert set(source) == SOURCE_KEYS, source

    completed, langchain, failed, processing, garbled = (jobs[j.job_id] for j in IMPORTABLE_JOBS)
    assert completed.payload["backgrounds"] == ["cybersecurity", "SaaS"]

    assert completed.status == "succeeded"
    assert completed.error is None
    assert completed.result is not None
    assert completed.result["sources"] == [
        {
            "document_id": None,
            "filename": "brochure.pdf",
            "page": 3,
            "snippet": "Zero-trust access for every branch office.",
            "score": 0.82,
        },
        {
            "document_id": None,
            "filename": "pricing.docx",
            "page": None,
            "snippet": "Flat per-seat pricing.",
            "score": 0.4,
        },
    ]

    assert langchain.status == "succeeded"
    assert langchain.result is not None
    assert langchain.result["sources"] == [
        {
            "document_id": None,
            "filename": "deck.pptx",
            "page": 2,
            "snippet": "Our platform cut onboarding time by 40%.",
            "score": None,
        }
    ]

    assert failed.status == "failed"
    assert failed.error
    assert failed.result is not None
    assert failed.result["sources"] == []

    assert processing.status == "failed"
    assert processing.error is not None
    assert "processing" in processing.error
    assert "not resumable" in processing.error

    # Malformed sources JSON doesn't stop the import; the job just has no sources.
    assert garbled.status == "succeeded"
    assert garbled.user_id == user_id[INACTIVE.id]
    assert garbled.result is not None
    assert garbled.result["sources"] == []
    assert garbled.result["refined_text"] == "Text whose sources were garbled."


def test_non_finite_numbers_in_sources_are_dropped(container: Container, tmp_path: Path) -> None:
    """The original's json.dumps wrote NaN and Infinity, which PostgreSQL's JSON refuses."""
    path = build_legacy_db(tmp_path / "marketing_mvp.db")
    odd = [
        {"filename": "nan.pdf", "page": 1, "content": "a", "score": float("nan")},
        {"filename": "inf.pdf", "page": float("inf"), "content": "b", "score": float("-inf")},
    ]
    raw = json.dumps(odd)
    assert "NaN" in raw
    assert "Infinity" in raw
    conn = sqlite3.connect(path)
    conn.execute("UPDATE jobs SET sources = ? WHERE job_id = ?", (raw, IMPORTABLE_JOBS[0].job_id))
    conn.commit()
    conn.close()

    report = import_legacy(container.db, path)
    assert report.jobs_imported == len(IMPORTABLE_JOBS)
    with container.db.session() as s:
        job = s.get(Job, IMPORTABLE_JOBS[0].job_id)
    assert job is not None
    assert job.result is not None
    assert job.result["sources"] == [
        {"document_id": None, "filename": "nan.pdf", "page": 1, "snippet": "a", "score": None},
        {"document_id": None, "filename": "inf.pdf", "page": None, "snippet": "b", "score": None},
    ]


# --- bad inputs ---------------------------------------------------------------------------


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "nowhere" / "marketing_mvp.db"


def _random_bytes(tmp_path: Path) -> Path:
    path = tmp_path / "random.db"
    path.write_bytes(random.Random(1234).randbytes(8192))
    return path


def _no_users_table(tmp_path: Path) -> Path:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, job_id VARCHAR)")
    conn.execute("INSERT INTO jobs (job_id) VALUES ('x')")
    conn.commit()
    conn.close()
    return path


def _directory(tmp_path: Path) -> Path:
    path = tmp_path / "a-directory.db"
    path.mkdir()
    return path


BAD_INPUTS = [
    pytest.param(_missing, "does not exist", id="missing"),
    pytest.param(_directory, "is not a file", id="directory"),
    pytest.param(_random_bytes, "is not a readable SQLite database", id="random-bytes"),
    pytest.param(_no_users_table, "has no users table", id="no-users-table"),
]


@pytest.mark.parametrize(("make", "message"), BAD_INPUTS)
def test_bad_input_raises_legacy_import_error(
    container: Container, tmp_path: Path, make: Any, message: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(LegacyImportError) as info:
        import_legacy(container.db, path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert count(container, User) == 0


def test_file_name_with_uri_characters_imports(container: Container, tmp_path: Path) -> None:
    """'#' and '?' are legal in file names; they must not be read as parts of a URI."""
    folder = tmp_path / "copies"
    folder.mkdir()
    path = folder / "marketing_mvp (copy #2?).db"
    shutil.copyfile(build_legacy_db(tmp_path / "marketing_mvp.db"), path)
    before = path.read_bytes()

    report = import_legacy(container.db, path)
    assert report.users_imported == len(IMPORTABLE_USERS)
    assert report.jobs_imported == len(IMPORTABLE_JOBS)
    # Opened read-only, in place: nothing new appears next to it and it is unchanged.
    assert sorted(p.name for p in folder.iterdir()) == [path.name]
    assert path.read_bytes() == before


# --- the command --------------------------------------------------------------------------


def run_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pitchcraft", *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def cli_env(tmp_path: Path, database_url: str | None) -> dict[str, str]:
    env = {"DATA_DIR": str(tmp_path / "data"), "CONTAINER_MODE": "no"}
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def test_cli_import_prints_counts(
    tmp_path: Path, database_url: str | None, legacy_db: Path
) -> None:
    env = cli_env(tmp_path, database_url)
    first = run_cli(env, tmp_path, "import-legacy", str(legacy_db))
    assert first.returncode == 0, first.stderr
    out = [line.split() for line in first.stdout.splitlines()]
    assert out[0] == ["Imported", "from", f"{legacy_db}:"]
    assert out[1:4] == FIRST_RUN

    second = run_cli(env, tmp_path, "import-legacy", str(legacy_db))
    assert second.returncode == 0, second.stderr
    out = [line.split() for line in second.stdout.splitlines()]
    assert out[1:4] == SECOND_RUN


@pytest.mark.parametrize(("make", "message"), BAD_INPUTS)
def test_cli_import_bad_file_exits_2(tmp_path: Path, make: Any, message: str) -> None:
    path = make(tmp_path)
    result = run_cli(cli_env(tmp_path, None), tmp_path, "import-legacy", str(path))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "Imported from" not in result.stdout
