"""Starting the work that runs beside requests: the worker and its job kinds, and the
warm-up of the parser process and the embedding model."""

from __future__ import annotations

import logging
import threading

from pitchcraft.container import Container, multilingual
from pitchcraft.documents.enrich import ENRICH, EXTRA_NICE, Enricher, others_waiting, queue_missing
from pitchcraft.documents.ingest import Ingestor
from pitchcraft.documents.service import INGEST
from pitchcraft.ingestion import sandbox
from pitchcraft.jobs import queue
from pitchcraft.jobs.models import Job
from pitchcraft.jobs.worker import Kind, Worker, new_worker_id
from pitchcraft.refine.runner import REFINE, Runner

log = logging.getLogger(__name__)


# The ingestion lane's processes also enrich documents (in a lane of their own).
LANES = {"ingest": (INGEST, ENRICH), "refine": (REFINE,), "all": (INGEST, REFINE, ENRICH)}
# A refine job whose worker died mid-way is tried once more, then fails with the reason.
REFINE_ATTEMPTS = 2


class Lanes:
    """The workers of one process, one per lane: ingestion never holds up a refine job."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers

    @property
    def id(self) -> str:
        """The process's worker id (its lanes share it: each claims only its own kinds)."""
        return self.workers[0].id

    def start(self) -> None:
        for w in self.workers:
            w.start()

    def stop(self, timeout: float = 10) -> None:
        for w in self.workers:
            w.stop(timeout)


def build_worker(container: Container, kind: str = "all") -> Lanes:
    """The workers for this process (started by `serve`, or `pitchcraft worker --kind`):
    an ingestion lane (WORKER_CONCURRENCY threads at WORKER_NICE), a refine lane
    (REFINE_CONCURRENCY threads at normal priority), each claiming only its own kind, and,
    with MULTILINGUAL_SEARCH on, an enrichment lane (one thread, nicer than ingestion) that
    only works while no ingestion or refine job is queued or running."""
    s = container.settings
    ingestor = Ingestor(
        settings=s,
        db=container.db,
        store=container.store,
        index=container.index,
        embedder=container.embedder,
        sparse=container.sparse,
        deleted=container.purger.mark,
    )
    runner = Runner(
        db=container.db,
        search=container.search,
        llm=container.model.llm,
        context_passages=s.context_passages,
        context_budget_chars=s.context_budget_chars,
    )

    def refine_gave_up(job: Job) -> None:
        log.warning("refine job %s stopped its worker %d times", job.id, job.attempts - 1)

    worker_id = new_worker_id()
    workers = []
    if INGEST in LANES[kind]:
        workers.append(
            Worker(
                container.db,
                {INGEST: Kind(handler=ingestor.run, gave_up=ingestor.gave_up)},
                concurrency=s.worker_concurrency,
                lease_seconds=s.job_lease_seconds,
                nice=s.worker_nice,
                wakeup=container.wakeup,
                worker_id=worker_id,
                finished=container.finished,
            )
        )
    if REFINE in LANES[kind]:
        workers.append(
            Worker(
                container.db,
                {
                    REFINE: Kind(
                        handler=runner.run, gave_up=refine_gave_up, max_attempts=REFINE_ATTEMPTS
                    )
                },
                concurrency=s.refine_concurrency,
                lease_seconds=s.job_lease_seconds,
                wakeup=container.wakeup,
                worker_id=worker_id,
                finished=container.finished,
            )
        )
    if ENRICH in LANES[kind] and s.multilingual_search:
        queued = queue_missing(container.db)
        if queued:
            log.info("queued multilingual enrichment of %d indexed document(s)", queued)

        def busy() -> bool:
            return others_waiting(container.db, (INGEST, REFINE))

        enricher = Enricher(
            db=container.db,
            index=container.index,
            engine=lambda: multilingual(s),
            busy=busy,
        )
        workers.append(
            Worker(
                container.db,
                {ENRICH: Kind(handler=enricher.run, gave_up=enricher.gave_up)},
                concurrency=1,
                lease_seconds=s.job_lease_seconds,
                # Its e5 compute threads inherit the claiming thread's priority.
                nice=min(19, s.worker_nice + EXTRA_NICE),
                wakeup=container.wakeup,
                worker_id=worker_id,
                finished=container.finished,
                ready=lambda: not busy(),
            )
        )
    return Lanes(workers)


def start_background_work(container: Container) -> Lanes:
    """The in-process workers, after tidying what a crash may have left behind."""
    if container.embedded_vectors:
        # The embedded index allows one process, so every running job was this
        # process's before it stopped: resume them now instead of after their lease.
        resumed = queue.release_running(container.db, kinds=(INGEST, REFINE, ENRICH))
        if resumed:
            log.info("resuming %d interrupted job(s)", resumed)
        swept = container.documents.sweep_orphans()
        if any(swept.values()):
            log.info("removed orphans left by a crash: %s", swept)
    lanes = build_worker(container)
    lanes.start()
    threading.Thread(target=_warm_up, args=(container,), name="warm-up", daemon=True).start()
    return lanes


def stop_background_work(worker: Worker | Lanes, timeout: float = 10) -> None:
    """A stop of the server: parse children first (an OCR run could take minutes), whose
    documents are retried at the next start, then the worker."""
    killed = sandbox.stop_all()
    if killed:
        log.info("stopped %d document parse(s) in progress; they resume at the next start", killed)
    worker.stop(timeout)


def _warm_up(container: Container) -> None:
    """Start the parser process and load the embedding model (one per process, for
    searches and documents) now, not on the first upload or search."""
    try:
        sandbox.warm_up()
        embedder = container.embedder()
        if container.settings.embedding_backend == "local":  # a remote one needs no loading
            embedder.embed_queries(["warm up"])
        multilingual(container.settings)  # loads e5 when on (a failure is logged once)
    except Exception:  # the first real use reports the problem properly
        log.warning("warm-up failed", exc_info=True)
