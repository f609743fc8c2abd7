"""Builds every adapter from Settings, once per process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pitchcraft.accounts.service import AccountData
from pitchcraft.admin.model import KEY_UNREADABLE, SECRET_PURPOSE, ModelKeyUnreadable, SavedModel
from pitchcraft.admin.users import Users
from pitchcraft.auth.ratelimit import Throttle
from pitchcraft.auth.security import Passwords, Tokens
from pitchcraft.auth.service import Accounts
from pitchcraft.auth.sessions import SessionStore
from pitchcraft.channels.service import Channels
from pitchcraft.core import migrate
from pitchcraft.core.db import Database
from pitchcraft.core.filemodes import private_roots, repair_modes, restrict_umask
from pitchcraft.core.persistence import PathReport, ensure_persistent
from pitchcraft.core.secretbox import SecretBox
from pitchcraft.core.system import server_secret
from pitchcraft.documents.limits import UserLimits
from pitchcraft.documents.service import Documents
from pitchcraft.documents.sources import Sources
from pitchcraft.documents.storage import FileStore
from pitchcraft.embedding import build_embedder
from pitchcraft.embedding.base import Embedder, SparseEncoder
from pitchcraft.embedding.multilingual import MultilingualEmbedder, multilingual_for
from pitchcraft.embedding.sparse import Bm25Encoder
from pitchcraft.glossary.service import Glossaries
from pitchcraft.jobs.watch import Finished
from pitchcraft.jobs.worker import Wakeup
from pitchcraft.refine.service import Refine
from pitchcraft.search.service import Search
from pitchcraft.settings import Settings
from pitchcraft.templates.service import Templates
from pitchcraft.vectors import build_index
from pitchcraft.vectors.base import VectorIndex
from pitchcraft.vectors.purge import Purger

log = logging.getLogger(__name__)

T = TypeVar("T")


class Lazy(Generic[T]):
    """Built on first use, once, thread-safely: the embedding model takes seconds to load
    and the vector index owns files, so neither is touched by code that does not need it."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._value: T | None = None
        self._lock = threading.Lock()

    def __call__(self) -> T:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._make()
        return self._value

    @property
    def built(self) -> bool:
        return self._value is not None


@dataclass
class Container:
    settings: Settings
    db: Database
    accounts: Accounts
    account_data: AccountData
    store: FileStore
    index: Lazy[VectorIndex]
    embedder: Lazy[Embedder]
    sparse: Lazy[SparseEncoder]
    documents: Documents
    sources: Sources
    search: Search
    templates: Templates
    refine: Refine
    channels: Channels
    glossaries: Glossaries
    # The model connection: saved in the app, else LLM_*; read at each job.
    model: SavedModel
    users: Users
    # Queuing a job calls it; the worker of this process waits on it.
    wakeup: Wakeup
    # Purges deleted passages from disk a while after a batch of deletes.
    purger: Purger
    path_reports: list[PathReport] = field(default_factory=list)
    # The worker of this process tells it each job it finishes; waiting requests listen.
    finished: Finished = field(default_factory=Finished)

    @property
    def embedded_vectors(self) -> bool:
        return not self.settings.qdrant_url

    def close(self) -> None:
        self.purger.close()
        if self.index.built:
            self.index().close()
        self.model.close()
        self.db.dispose()


def prepare_storage(settings: Settings) -> list[PathReport]:
    """The persistence guard (raises DataNotPersistent with the fix in its message), with
    data made private: new files 0600 from now on, an older install's modes repaired."""
    restrict_umask()
    reports = ensure_persistent(settings)
    repaired = repair_modes(private_roots(settings))
    if repaired:
        log.warning(
            "made %d data folder(s) and file(s) private (0700/0600); other local accounts "
            "could read them, e.g. %s",
            len(repaired),
            repaired[0],
        )
    return reports


def multilingual(settings: Settings) -> MultilingualEmbedder | None:
    """The process's e5 engine (loaded on first use), or None: MULTILINGUAL_SEARCH is off,
    or the engine cannot load here (said once in the log): English-only."""
    return multilingual_for(settings)


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
    secret = server_secret(settings, db)
    tokens = Tokens(secret, settings.access_token_minutes)
    sessions = SessionStore(
        db,
        tokens,
        idle_minutes=settings.session_idle_minutes,
        cache_seconds=settings.session_cache_seconds,
    )
    accounts = Accounts(
        db=db,
        passwords=Passwords(),
        tokens=tokens,
        sessions=sessions,
        throttle=Throttle(
            login_per_email=settings.login_rate_limit_per_email,
            login_per_client=settings.login_rate_limit_per_client,
            login_per_email_client=settings.login_rate_limit_per_email_client,
            uploads_per_hour=settings.user_uploads_per_hour,
            register_per_client=settings.register_rate_limit_per_client,
            storage_url=settings.rate_limit_storage_url,
            refine_per_user=settings.refine_rate_limit_per_user,
        ),
        password_min_length=settings.password_min_length,
        registration_open=settings.registration_open,
    )
    store = FileStore(settings.storage_dir)
    index: Lazy[VectorIndex] = Lazy(lambda: build_index(settings))
    embedder: Lazy[Embedder] = Lazy(lambda: build_embedder(settings))
    sparse: Lazy[SparseEncoder] = Lazy(Bm25Encoder)
    wakeup = Wakeup()
    purger = Purger(index, delay_s=settings.vector_purge_delay_s, after=db.compact_after_delete)
    documents = Documents(
        db=db,
        store=store,
        index=index,
        notify=wakeup,
        limits=UserLimits(
            quota_bytes=settings.user_storage_quota_mb * 1024 * 1024,
            max_queued=settings.user_queued_documents,
        ),
        deleted=purger.mark,
        sessions=sessions,
    )
    if settings.clear_documents_on_login:
        accounts.clear_documents = documents.clear_ended_sessions
    sources = Sources(
        documents=documents,
        store=store,
        index=index,
        soffice=settings.soffice_path,
        memory_mb=settings.parse_memory_mb,
    )
    search = Search(
        index=index, embedder=embedder, sparse=sparse, multilingual=lambda: multilingual(settings)
    )
    templates = Templates(db)
    model = SavedModel(db=db, settings=settings, box=SecretBox(secret, purpose=SECRET_PURPOSE))
    try:
        model.llm()  # LLM_* settings that cannot work fail at start, naming the setting
    except ModelKeyUnreadable:
        log.warning(
            "the saved model key cannot be read (the server secret changed): %s", KEY_UNREADABLE
        )
    channels = Channels(db)
    glossaries = Glossaries(db)
    refine = Refine(
        db=db,
        templates=templates,
        notify=wakeup,
        channels=channels,
        glossaries=glossaries,
        admit=accounts.throttle.refine,
    )
    return Container(
        settings=settings,
        db=db,
        accounts=accounts,
        account_data=AccountData(db=db, accounts=accounts, store=store, index=index),
        store=store,
        index=index,
        embedder=embedder,
        sparse=sparse,
        documents=documents,
        sources=sources,
        search=search,
        templates=templates,
        refine=refine,
        channels=channels,
        glossaries=glossaries,
        model=model,
        users=Users(db),
        wakeup=wakeup,
        purger=purger,
        path_reports=reports,
    )
