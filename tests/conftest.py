"""Shared fixtures: every database test runs on a SQLite file and on the real PostgreSQL."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from qdrant_client import QdrantClient

from pitchcraft.settings import Settings
from pitchcraft.vectors.base import VectorIndex
from pitchcraft.vectors.qdrant_edge import EdgeIndex
from pitchcraft.vectors.qdrant_server import ServerIndex
from pitchcraft.web.app import create_app

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"


def _pg_conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass
class PgSchema:
    """A throwaway schema in the test database, so tests never see each other's rows."""

    name: str = field(default_factory=lambda: f"t_{secrets.token_hex(6)}")

    @property
    def url(self) -> str:
        sep = "&" if "?" in PG_URL else "?"
        return f"{PG_URL}{sep}options=-csearch_path%3D{self.name}"

    def create(self) -> None:
        with psycopg.connect(_pg_conninfo(PG_URL), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')

    def drop(self) -> None:
        with psycopg.connect(_pg_conninfo(PG_URL), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None means the embedded default (a SQLite file under DB_PATH)."""
    if request.param == "sqlite":
        yield None
        return
    schema = PgSchema()
    try:
        schema.create()
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL}: {exc} (make test starts it)")
    try:
        yield schema.url
    finally:
        schema.drop()


def make_settings(data_dir: Path, database_url: str | None = None, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "login_rate_limit_per_client": "1000/minute",
        "login_rate_limit_per_email": "1000/minute",
        "login_rate_limit_per_email_client": "1000/minute",
        "register_rate_limit_per_client": "1000/minute",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextmanager
def vector_index(kind: str, root: Path, dim: int) -> Iterator[VectorIndex]:
    """The vector index adapter `kind`: "edge" (Qdrant Edge shards under `root`) or "server"
    (qdrant-client's in-process mode, standing in for a Qdrant server)."""
    made: VectorIndex
    if kind == "edge":
        made = EdgeIndex(root / "qdrant", dim)
    else:
        made = ServerIndex(QdrantClient(":memory:"), dim)
    try:
        yield made
    finally:
        made.close()


@contextmanager
def app_on(database: str, data_dir: Path, **overrides: object) -> Iterator[TestClient]:
    """A running app on `database` ("sqlite", or "postgresql" in a schema of its own, dropped
    afterwards), its data under `data_dir`; documents kept at sign-in unless overridden."""
    schema = PgSchema() if database == "postgresql" else None
    if schema:
        schema.create()
    values: dict[str, object] = {"clear_documents_on_login": False, **overrides}
    try:
        with TestClient(create_app(make_settings(data_dir, schema and schema.url, **values))) as c:
            yield c
    finally:
        if schema:
            schema.drop()


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return make_settings(tmp_path / "data", database_url)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


# A password the policy accepts (at least 8 characters, not a common one).
PASSWORD = "test-pass-123"


def register(
    client: TestClient | httpx.Client, email: str = "user@example.com", password: str = PASSWORD
) -> str:
    r = client.post("/api/v1/auth/register", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    token: str = r.json()["access_token"]
    return token


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerProcess:
    """`pitchcraft serve` as a real process, for restart and browser tests."""

    def __init__(self, env: dict[str, str], log_path: Path, args: Sequence[str] = ()) -> None:
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.args = list(args)  # more `serve` options, e.g. --forwarded-allow-ips
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> ServerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pitchcraft", "serve", "--port", str(self.port), *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.log_path.parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"server did not become healthy:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def server_env(tmp_path: Path, database_url: str | None) -> dict[str, str]:
    env = {
        "DATA_DIR": str(tmp_path / "data"),
        "LOG_LEVEL": "INFO",
        "CONTAINER_MODE": "no",
        "REGISTER_RATE_LIMIT_PER_CLIENT": "1000/minute",
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[object]:
    servers: list[ServerProcess] = []

    def _start(env: dict[str, str], args: Sequence[str] = ()) -> ServerProcess:
        server = ServerProcess(env, tmp_path / f"server-{len(servers)}.log", args)
        servers.append(server)
        return server.start()

    yield _start
    for s in servers:
        if s.proc is not None and s.proc.poll() is None:
            s.stop(signal.SIGKILL)


# -- the language model: a local OpenAI-compatible endpoint ---------------------------------
# tests/llm_server.py: it checks every request (model, messages, bearer key) and answers
# with a refined text computed from the prompt, or with what the test scripts
# (fake_llm.status(500).ok(), .timeout(s), .malformed(), ...). Point the app at it with
# make_settings(..., llm_base_url=fake_llm.base_url, llm_api_key=fake_llm.api_key), or
# with fake_llm.env() for a `pitchcraft serve` process.

from tests.llm_server import FakeLLM  # noqa: E402

FAKE_LLM_KEY = "sk-fake-llm-0123456789abcdef"


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    with FakeLLM(api_key=FAKE_LLM_KEY) as server:
        yield server


# -- scheduling: the longest test files first ----------------------------------------------
# `make test` runs two xdist workers with `--dist loadfile`: each file goes whole to the next
# free worker. xdist's default order (most tests first) sends the files with few but long
# tests (a 619-page PDF killed mid-ingestion, backups through real servers, Chromium) last,
# so one worker ran on for minutes after the other had finished. These files go first, the
# longest at the top; the rest follow in xdist's order, and fill the gaps at the end.
# Only the order changes: every file still runs whole on one worker.
LONGEST_FILES = (  # summed call and setup times of a run on the loaded 2-core machine
    "test_documents.py",  # ~1,250 s: the whole corpus through the service
    "test_refine_llm.py",  # ~570 s: jobs surviving kill -9
    "test_ingest_crash.py",
    "test_backup.py",
    "test_multilingual.py",
    "test_original_client.py",
    "test_admin_processes.py",
    "test_browser_refine.py",
    "test_security_http.py",
    "test_fuzz.py",
    "test_restart.py",
    "test_readme.py",
    "test_ingestion_order.py",
    "test_browser_first_run.py",
    "test_deletion_purge.py",
    "test_crash_loop.py",
    "test_browser_sources.py",
    "test_browser_documents.py",
    "test_lanes.py",
)


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config.option, "loadscopereorder"):  # keep the collection order below
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FILES)}
    per_file: dict[str, int] = {}
    for item in items:
        per_file[item.path.name] = per_file.get(item.path.name, 0) + 1
    # A stable sort: the tests of one file keep their order.
    items.sort(key=lambda it: (rank.get(it.path.name, len(rank)), -per_file[it.path.name]))


# Lines of a server's log worth reading when a test that ran it fails.
_LOG_SIGNALS = ("WARNING", "ERROR", "CRITICAL", "Traceback", "Error:", "failed")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> object:
    """A failed test that started servers shows what they logged: a document that ends
    "failed" or a job that errs says why only there."""
    report = yield
    tmp = getattr(item, "funcargs", {}).get("tmp_path")
    if report.failed and isinstance(tmp, Path):
        for log in sorted(tmp.glob("server-*.log")):
            lines = log.read_text(errors="replace").splitlines()
            picked = [ln for ln in lines if any(s in ln for s in _LOG_SIGNALS)]
            tail = [*picked[-40:], "--- last lines ---", *lines[-20:]]
            report.sections.append((f"server log {log.name}", "\n".join(tail)))
    return report
