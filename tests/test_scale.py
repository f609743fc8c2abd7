"""Several worker processes on one queue, as compose.scale.yaml runs them.

Real OS processes against one database: every job runs exactly once, and a job whose worker
was killed is taken over once its lease runs out. The queue-level tests run
`pitchcraft.jobs.worker.Worker` in child processes over a job kind whose handler writes down
each run (`pitchcraft worker` only knows ingestion and refine, which need a Qdrant server, and
none runs here); the last test runs the real `pitchcraft worker` command twice against
PostgreSQL and a shared STORAGE_PATH, with jobs that end before they need any vectors.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select

from pitchcraft.auth.models import User
from pitchcraft.container import Container, build
from pitchcraft.documents.incoming import IncomingFile
from pitchcraft.documents.models import Document
from pitchcraft.jobs import queue
from pitchcraft.jobs.models import Job
from tests.conftest import CORPUS, PG_URL, REPO, PgSchema, make_settings

SRC = REPO / "src"
KIND = "scale"

# One worker process: the real Worker (claim, lease renewal, finish) over a handler that
# appends "start|done job_id attempt pid" to this process's own file with one write(2) per
# line (O_APPEND), so a line is on disk before the next step, even if the process is killed.
# A job with payload {"hang": true} never returns on its first attempt.
WORKER_CHILD = """
import os, signal, sys, threading, time
import pitchcraft.auth.models, pitchcraft.documents.models  # the tables jobs refer to
from pitchcraft.core.db import Database
from pitchcraft.jobs.worker import Kind, Outcome, Worker
from pitchcraft.settings import Settings

runs, lease, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
db = Database(Settings(_env_file=None))
out = os.open(os.path.join(runs, f"{os.getpid()}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)

def note(event, job):
    os.write(out, f"{event} {job.id} {job.attempts} {os.getpid()}\\n".encode())

def handler(job, beat):
    note("start", job)
    if job.payload.get("hang") and job.attempts == 1:
        while True:
            time.sleep(1)
    time.sleep(float(job.payload.get("sleep", 0)))
    note("done", job)
    return Outcome.succeeded({"pid": os.getpid()})

worker = Worker(
    db, {"scale": Kind(handler=handler, gave_up=lambda job: None)},
    concurrency=concurrency, lease_seconds=lease, poll_seconds=0.05,
)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
worker.start()
print("ready", worker.id, flush=True)
stop.wait()
worker.stop(timeout=30)
db.dispose()
"""


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "DATA_DIR", "QDRANT_URL", "QDRANT_PATH", "STORAGE_PATH"}
    }
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    env.update(extra)
    return env


@dataclass
class Child:
    proc: subprocess.Popen[str]
    worker_id: str
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        if child.proc.poll() is None:
            child.kill()


def start_queue_worker(
    children: list[Child], env: dict[str, str], runs: Path, *, lease: int, concurrency: int
) -> Child:
    log = runs.parent / f"worker-{len(children)}.err"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER_CHILD, str(runs), str(lease), str(concurrency)],
            env=child_env(env),
            cwd=runs.parent,  # away from any .env
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    child = Child(proc, "", log)
    children.append(child)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if line[:1] != ["ready"]:
        proc.kill()
        proc.wait()
        pytest.fail(f"worker process did not start: {line}\n{log.read_text()}")
    child.worker_id = line[1]
    return child


def wait_for(
    what: str, condition: Callable[[], bool], children: list[Child], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for child in children:
            code = child.proc.poll()
            if code is not None and code != -signal.SIGKILL:
                pytest.fail(f"worker {child.pid} exited with {code}:\n{child.log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def runs_of(runs: Path) -> list[tuple[str, str, int, int]]:
    """(event, job id, attempt, pid) for every line every worker process wrote."""
    lines = []
    for path in sorted(runs.glob("*.log")):
        for line in path.read_text().splitlines():
            event, job_id, attempt, pid = line.split()
            lines.append((event, job_id, int(attempt), int(pid)))
    return lines


def new_user(container: Container, email: str = "scale@example.com") -> int:
    with container.db.session() as s:
        user = User(email=email, password_hash="x")
        s.add(user)
        s.flush()
        return user.id


@pytest.fixture
def pg_url() -> Iterator[str]:
    """PostgreSQL only: a schema of its own in the test database."""
    schema = PgSchema()
    try:
        schema.create()
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL}: {exc} (make test starts it)")
    try:
        yield schema.url
    finally:
        schema.drop()


# -- the queue, between processes --------------------------------------------------------

JOBS = 200


def test_two_worker_processes_run_every_job_exactly_once(
    tmp_path: Path, database_url: str | None, children: list[Child]
) -> None:
    """On PostgreSQL (FOR UPDATE SKIP LOCKED) and on SQLite (one writer at a time)."""
    settings = make_settings(tmp_path / "data", database_url)
    container = build(settings)  # creates the schema
    user_id = new_user(container)
    runs = tmp_path / "runs"
    runs.mkdir()
    env = {"DATA_DIR": str(settings.data_dir)}
    if database_url:
        env["DATABASE_URL"] = database_url
    a = start_queue_worker(children, env, runs, lease=60, concurrency=2)
    b = start_queue_worker(children, env, runs, lease=60, concurrency=2)

    with container.db.session() as s:  # all at once, while both processes poll
        ids = [
            queue.enqueue(s, kind=KIND, user_id=user_id, payload={"sleep": 0.005}).id
            for _ in range(JOBS)
        ]

    def finished() -> int:
        with container.db.session() as s:
            return len(s.scalars(select(Job.id).where(Job.status == "succeeded")).all())

    wait_for(f"{JOBS} jobs to finish", lambda: finished() == JOBS, children, timeout=240)
    assert a.stop() == 0 and b.stop() == 0

    lines = runs_of(runs)
    started = Counter(job_id for event, job_id, _, _ in lines if event == "start")
    done = Counter(job_id for event, job_id, _, _ in lines if event == "done")
    assert started == Counter(ids), "a job ran twice, or never"
    assert done == Counter(ids)
    ran_in = {pid for _, _, _, pid in lines}
    assert ran_in == {a.pid, b.pid}, "both processes take jobs"
    by_job = {job_id: pid for event, job_id, _, pid in lines if event == "done"}
    worker_of_pid = {a.pid: a.worker_id, b.pid: b.worker_id}
    with container.db.session() as s:
        jobs = s.scalars(select(Job).where(Job.kind == KIND)).all()
    assert len(jobs) == JOBS
    for job in jobs:
        assert (job.status, job.attempts) == ("succeeded", 1)
        assert job.result == {"pid": by_job[job.id]}
        assert job.locked_by == worker_of_pid[by_job[job.id]]
    container.close()


LEASE = 4  # seconds; renewed every LEASE / 3


def test_a_killed_workers_job_is_taken_over_after_its_lease(
    tmp_path: Path, pg_url: str, children: list[Child]
) -> None:
    settings = make_settings(tmp_path / "data", pg_url)
    container = build(settings)
    user_id = new_user(container)
    with container.db.session() as s:
        job_id = queue.enqueue(s, kind=KIND, user_id=user_id, payload={"hang": True}).id
    runs = tmp_path / "runs"
    runs.mkdir()
    env = {"DATA_DIR": str(settings.data_dir), "DATABASE_URL": pg_url}

    def row() -> Job:
        with container.db.session() as s:
            job = s.get(Job, job_id)
            assert job is not None
            return job

    a = start_queue_worker(children, env, runs, lease=LEASE, concurrency=1)
    wait_for("A to start the job", lambda: bool(runs_of(runs)), children, timeout=60)
    b = start_queue_worker(children, env, runs, lease=LEASE, concurrency=1)

    # While A lives it renews its lease, and B, polling all along, leaves the job alone:
    # wait until A has renewed it after the lease current when B came up would have ended.
    held_until = row().lease_until
    assert held_until is not None
    wait_for(
        "A to renew its lease",
        lambda: (row().lease_until or held_until) >= held_until + timedelta(seconds=LEASE),
        children,
        timeout=60,
    )
    job = row()
    assert (job.status, job.attempts, job.locked_by) == ("running", 1, a.worker_id)
    assert runs_of(runs) == [("start", job_id, 1, a.pid)]

    a.kill()  # kill -9 in the middle of the job: no lease renewal from now on
    wait_for("B to finish the job", lambda: row().status == "succeeded", children, timeout=120)
    job = row()
    assert job.attempts == 2
    assert job.locked_by == b.worker_id
    assert job.result == {"pid": b.pid}
    assert sorted(runs_of(runs)) == sorted(
        [("start", job_id, 1, a.pid), ("start", job_id, 2, b.pid), ("done", job_id, 2, b.pid)]
    )
    assert b.stop() == 0
    container.close()


# -- the real `pitchcraft worker` command -------------------------------------------------

STARTED = re.compile(r"worker (\S+) started")


def test_pitchcraft_worker_processes_share_the_queue_and_the_storage(
    tmp_path: Path, pg_url: str, children: list[Child]
) -> None:
    """Two `pitchcraft worker` processes, PostgreSQL, one STORAGE_PATH: files stored by the
    "API" (this process) are read by whichever worker claims them, each job once.

    The documents are password-protected PDFs: each ingestion job reads the file, fails with
    a clear reason and never needs the embedder or the (absent) Qdrant server."""
    data = tmp_path / "data"
    qdrant_url = "http://127.0.0.1:9"  # nothing listens: these jobs never reach vectors
    settings = make_settings(data, pg_url, qdrant_url=qdrant_url, worker_in_process=False)
    api = build(settings)
    user_id = new_user(api)
    env = {
        "DATA_DIR": str(data),
        "DATABASE_URL": pg_url,
        "QDRANT_URL": qdrant_url,
        "CONTAINER_MODE": "no",
        "LOG_LEVEL": "INFO",
        "AUTO_MIGRATE": "false",  # as in compose.scale.yaml: the schema is migrated once
    }
    for n in range(2):
        log = tmp_path / f"pitchcraft-worker-{n}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pitchcraft", "worker"],
                env=child_env(env),
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        children.append(Child(proc, "", log))
    for child in children:
        wait_for(
            "`pitchcraft worker` to start",
            lambda c=child: bool(STARTED.search(c.log.read_text())),
            children,
            timeout=180,
        )
        found = STARTED.search(child.log.read_text())
        assert found is not None
        child.worker_id = found[1]

    incoming = []
    for n in range(8):
        temp = api.store.new_temp(user_id)
        shutil.copyfile(CORPUS / "pdf" / "password.pdf", temp)
        incoming.append(IncomingFile(f"locked-{n}.pdf", size=temp.stat().st_size, temp=temp))
    documents = api.documents.accept(user_id, incoming)
    assert all(d.status == "queued" for d in documents)
    for d in documents:  # written by the "API" into the storage the workers read
        assert (settings.storage_dir / d.storage_key).is_file()

    def final() -> bool:
        # The handler marks the document failed before its worker finishes the job row.
        with api.db.session() as s:
            docs_failed = all(d.status == "failed" for d in s.scalars(select(Document)).all())
            jobs = s.scalars(select(Job).where(Job.kind == "ingest")).all()
            return docs_failed and all(j.status == "failed" for j in jobs)

    wait_for("the documents to be processed", final, children, timeout=300)
    with api.db.session() as s:
        docs = s.scalars(select(Document)).all()
        jobs = s.scalars(select(Job).where(Job.kind == "ingest")).all()
    assert len(docs) == len(jobs) == 8
    assert all("password" in (d.error or "") for d in docs), [d.error for d in docs]
    assert all((j.status, j.attempts) == ("failed", 1) for j in jobs)
    assert {j.locked_by for j in jobs} == {c.worker_id for c in children}, "both took jobs"

    for child in children:
        assert child.stop() == 0, child.log.read_text()
    api.close()
