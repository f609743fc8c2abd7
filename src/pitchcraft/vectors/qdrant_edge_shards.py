"""The Qdrant Edge shards under one root: opened once per process, shared, closed when idle.

Layout: ``root / user_{id}_documents`` is one `EdgeShard` (its own WAL, segments and
config), created on the user's first upsert and opened lazily afterwards. `EdgeIndex`
(qdrant_edge.py) reads and writes through `EdgeShards`; this module only opens, lends,
closes and deletes shards.

Things about qdrant-edge-py 0.9.0 this module works around:

* Each shard's WAL is locked with an OS file lock. A second *process* opening the same
  shard fails ("Can't init WAL: WouldBlock"), which becomes `VectorStoreLocked`; a second
  open in the *same* process fails the same way, so every shard is opened once per process
  and shared by all threads (a process-wide registry refuses a second `EdgeIndex` on the
  same shard with a clear error instead).
* Every shard gets its own search thread pool (8 threads by default on 2 cores), so
  `search_threads` defaults to 1, and at most `max_open_shards` idle shards stay open.
* A shard's vectors are fixed when it is created, and loading one with a config naming
  more vectors fails ("incompatible"). A shard made before the multilingual vector existed
  gets it on its first open here (`create_dense_vector`, which keeps every point; the
  points simply lack that vector until documents/enrich.py sets it).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import qdrant_edge as qe

from pitchcraft.core.files import fsync_dir
from pitchcraft.vectors.base import (
    DENSE,
    DENSE_MULTI,
    MULTI_DIM,
    SPARSE,
    IndexClosed,
    VectorStoreLocked,
    collection_name,
)
from pitchcraft.vectors.payload import DOCUMENT_ID

log = logging.getLogger(__name__)

CONFIG_FILE = "edge_config.json"
# A shard being rebuilt without its deleted points, and the old one on its way out.
REWRITE_SUFFIX = ".rewrite"
RETIRED_SUFFIX = ".retired"
# A shard directory under the root: collection_name(user_id).
_SHARD_DIR = re.compile(r"user_(\d+)_documents")

# Shard directories open in this process, whichever EdgeIndex opened them.
_OPEN_PATHS: set[Path] = set()
_OPEN_PATHS_LOCK = threading.Lock()


def _is_lock_error(message: str) -> bool:
    return (
        "WouldBlock" in message or "os error 11" in message or "temporarily unavailable" in message
    )


@dataclass
class _Slot:
    user_id: int
    shard: qe.EdgeShard
    path: Path
    users: int = 0  # operations in flight


class EdgeShards:
    """The shards of one root, each open at most once and shared by all threads."""

    def __init__(
        self,
        root: Path,
        dim: int,
        *,
        search_threads: int,
        indexing_threads: int,
        indexing_threshold_kb: int | None,
        max_open_shards: int,
    ) -> None:
        self.root = root
        self.dim = dim
        self._search_threads = search_threads
        self._indexing_threads = indexing_threads
        self._indexing_threshold_kb = indexing_threshold_kb
        self._max_open = max(1, max_open_shards)
        self._cond = threading.Condition()
        self._slots: OrderedDict[int, _Slot] = OrderedDict()  # least recently used first
        self._busy: set[int] = set()  # users whose shard is being opened, closed or deleted
        self._closed = False

    # -- configuration and layout --------------------------------------------------------

    def _config(self) -> qe.EdgeConfig:
        return qe.EdgeConfig(
            vectors={
                DENSE: qe.EdgeVectorParams(size=self.dim, distance=qe.Distance.Cosine),
                DENSE_MULTI: qe.EdgeVectorParams(size=MULTI_DIM, distance=qe.Distance.Cosine),
            },
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            hnsw_config=qe.HnswIndexConfig(
                m=16,
                ef_construct=100,
                full_scan_threshold=10_000,
                max_indexing_threads=self._indexing_threads,
            ),
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=self._indexing_threshold_kb),
            max_search_threads=self._search_threads,
            wal_enabled=True,
        )

    def path(self, user_id: int) -> Path:
        return self.root / collection_name(user_id)

    def user_ids(self) -> list[int]:
        """The users that have a shard under the root, ascending. Opens nothing."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            match = _SHARD_DIR.fullmatch(entry.name)
            user_id = int(match[1]) if match else None
            # Exactly the name `path` gives (not "user_07_…"), with a shard in it.
            if (
                user_id is not None
                and entry == self.path(user_id)
                and (entry / CONFIG_FILE).is_file()
            ):
                found.append(user_id)
        return sorted(found)

    # -- lending a shard to one operation ------------------------------------------------

    @contextmanager
    def borrow(self, user_id: int, *, create: bool = False) -> Iterator[qe.EdgeShard | None]:
        """The user's shard for one operation (opened if needed, created with `create`),
        or None when the user has none. Other threads may use the shard meanwhile."""
        slot = self._checkout(user_id, create=create)
        if slot is None:
            yield None
            return
        try:
            yield slot.shard
        finally:
            self._checkin(slot)

    def _checkout(self, user_id: int, *, create: bool) -> _Slot | None:
        """The user's shard with one more operation in flight, or None when there is none."""
        path = self.path(user_id)
        with self._cond:
            while True:
                if self._closed:
                    raise IndexClosed
                if user_id not in self._busy:
                    break
                self._cond.wait()
            slot = self._slots.get(user_id)
            if slot is not None:
                slot.users += 1
                self._slots.move_to_end(user_id)
                return slot
            interrupted = path.with_name(path.name + RETIRED_SUFFIX).exists()
            if not create and not interrupted and not (path / CONFIG_FILE).exists():
                return None
            self._busy.add(user_id)
        victims: list[_Slot] = []
        try:
            if interrupted:
                self._recover(path)
            shard = self._open(path, create=create)
        except BaseException:
            with self._cond:
                self._busy.discard(user_id)
                self._cond.notify_all()
            raise
        with self._cond:
            slot = _Slot(user_id=user_id, shard=shard, path=path, users=1)
            self._slots[user_id] = slot
            self._busy.discard(user_id)
            victims = self._evict_idle()
            self._cond.notify_all()
        self._finish_eviction(victims)
        return slot

    def _checkin(self, slot: _Slot) -> None:
        with self._cond:
            slot.users -= 1
            self._cond.notify_all()

    def _evict_idle(self) -> list[_Slot]:
        """Take the least recently used idle shards beyond max_open_shards (lock held)."""
        victims: list[_Slot] = []
        excess = len(self._slots) - self._max_open
        for user_id in list(self._slots):
            if excess <= 0:
                break
            slot = self._slots[user_id]
            if slot.users == 0:
                del self._slots[user_id]
                self._busy.add(user_id)
                victims.append(slot)
                excess -= 1
        return victims

    def _finish_eviction(self, victims: list[_Slot]) -> None:
        for slot in victims:
            try:
                self._close_shard(slot)
            except Exception:
                log.warning("closing the idle shard %s failed", slot.path, exc_info=True)
            finally:
                with self._cond:
                    self._busy.discard(slot.user_id)
                    self._cond.notify_all()

    # -- exclusive use: deleting a shard, or its files for another process ---------------

    def delete(self, user_id: int) -> None:
        """Close the user's shard and remove its directory (nothing when there is none)."""
        slot = self._take_exclusive(user_id)
        try:
            path = self.path(user_id)
            if slot is None and (path / CONFIG_FILE).exists():
                # Not open here: take the WAL lock first, so that files another process
                # has open are never deleted under it (that raises VectorStoreLocked).
                slot = _Slot(user_id, self._open(path, create=False), path)
            if slot is not None:
                self._close_shard(slot)
            if path.exists():
                shutil.rmtree(path)
        finally:
            self._release_exclusive(user_id)

    @contextmanager
    def closed(self, user_id: int) -> Iterator[Path | None]:
        """The user's shard directory with the shard closed in this process, for a child
        process to open; None when there is no shard. Every other operation on the user
        waits meanwhile; a shard that was open is reopened afterwards."""
        slot = self._take_exclusive(user_id)
        reopened: _Slot | None = None
        try:
            path = self.path(user_id)
            if slot is None and not (path / CONFIG_FILE).exists():
                yield None  # deleted meanwhile
                return
            if slot is not None:
                self._close_shard(slot)
            yield path
            if slot is not None:
                reopened = _Slot(user_id, self._open(path, create=False), path)
        finally:
            self._release_exclusive(user_id, reopened)

    def _take_exclusive(self, user_id: int) -> _Slot | None:
        """Mark the user busy and wait until nothing else uses the shard; the caller must
        call `_release_exclusive`. Returns the open slot (removed from the cache) if any."""
        with self._cond:
            while user_id in self._busy:
                self._cond.wait()
            if self._closed:
                raise IndexClosed
            self._busy.add(user_id)
            slot = self._slots.pop(user_id, None)
            while slot is not None and slot.users > 0:
                self._cond.wait()
            return slot

    def _release_exclusive(self, user_id: int, slot: _Slot | None = None) -> None:
        with self._cond:
            if slot is not None:
                self._slots[user_id] = slot
            self._busy.discard(user_id)
            self._cond.notify_all()

    # -- rewriting a shard without what was deleted -------------------------------------

    def rewrite(self, user_id: int, copy: Callable[[qe.EdgeShard, qe.EdgeShard], None]) -> bool:
        """Replace the user's shard by a fresh one holding only its live points, so deleted
        payloads leave the disk: segments keep deleted points' pages, and the WAL keeps
        every write, until the shard is rebuilt. `copy(old, new)` moves the points.

        The new shard is built beside the old (``.rewrite``), the old moves to
        ``.retired``, the new takes its name, and the old is removed; after a crash in
        between, the next open puts the old shard back. False when the user has none."""
        slot = self._take_exclusive(user_id)
        reopened: _Slot | None = None
        path = self.path(user_id)
        fresh = path.with_name(path.name + REWRITE_SUFFIX)
        retired = path.with_name(path.name + RETIRED_SUFFIX)
        try:
            if slot is None:
                self._recover(path)
                if not (path / CONFIG_FILE).exists():
                    return False
                slot = _Slot(user_id, self._open(path, create=False), path)
            target = _Slot(user_id, self._open(fresh, create=True), fresh)
            try:
                copy(slot.shard, target.shard)
            finally:
                self._close_shard(target)
            self._close_shard(slot)
            slot = None
            path.rename(retired)
            fresh.rename(path)
            fsync_dir(self.root)
            shutil.rmtree(retired)
            reopened = _Slot(user_id, self._open(path, create=False), path)
            return True
        except BaseException:
            if slot is not None:
                reopened = slot  # the old shard stays in use, as it was
            raise
        finally:
            self._release_exclusive(user_id, reopened)

    def _recover(self, path: Path) -> None:
        """Undo a rewrite of the shard at `path` that a crash interrupted: the old shard
        comes back whole if it had moved aside; a half-built new one is removed. (Its
        deleted points stay until the next rewrite.) The caller holds the user busy."""
        fresh = path.with_name(path.name + REWRITE_SUFFIX)
        retired = path.with_name(path.name + RETIRED_SUFFIX)
        if retired.exists() and not (path / CONFIG_FILE).exists():
            if path.exists():
                shutil.rmtree(path)
            retired.rename(path)
            log.warning("restored the vector index %s after an interrupted rewrite", path)
        for leftover in (fresh, retired):
            if leftover.exists():
                shutil.rmtree(leftover)

    # -- opening and closing -------------------------------------------------------------

    def _open(self, path: Path, *, create: bool) -> qe.EdgeShard:
        key = path.resolve()
        with _OPEN_PATHS_LOCK:
            if key in _OPEN_PATHS:
                raise RuntimeError(
                    f"the embedded vector index at {path} is already open in this process; "
                    "use one EdgeIndex per QDRANT_PATH and share it between threads"
                )
            _OPEN_PATHS.add(key)
        try:
            exists = (path / CONFIG_FILE).exists()
            try:
                if exists:
                    _add_multi_vector(path)
                    shard = qe.EdgeShard.load(str(path), self._config())
                elif create:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    shard = qe.EdgeShard.create(str(path), self._config())
                else:
                    raise FileNotFoundError(path)
            except Exception as exc:
                message = str(exc)
                if _is_lock_error(message):
                    raise VectorStoreLocked(str(path), message) from exc
                if "incompatible" in message.lower():
                    raise RuntimeError(
                        f"the embedded vector index at {path} was built with other vectors "
                        f"than EMBEDDING_MODEL/EMBEDDING_DIM now give ({self.dim} dimensions): "
                        f"{message}. Re-index the documents (delete that directory first)."
                    ) from exc
                raise
            try:
                if DOCUMENT_ID not in shard.info().payload_schema:
                    shard.update(
                        qe.UpdateOperation.create_field_index(
                            DOCUMENT_ID, qe.PayloadSchemaType.Keyword
                        )
                    )
                    shard.flush()
            except BaseException:
                shard.close()
                raise
            return shard
        except BaseException:
            with _OPEN_PATHS_LOCK:
                _OPEN_PATHS.discard(key)
            raise

    @staticmethod
    def _close_shard(slot: _Slot) -> None:
        try:
            slot.shard.close()  # flushes
        finally:
            with _OPEN_PATHS_LOCK:
                _OPEN_PATHS.discard(slot.path.resolve())

    def open_count(self) -> int:
        """How many shards are open; raises once `close` has been called."""
        with self._cond:
            if self._closed:
                raise IndexClosed
            return len(self._slots)

    def close(self) -> None:
        """Wait for the operations in flight, then close every shard (flushing it)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            while self._busy or any(s.users for s in self._slots.values()):
                self._cond.wait(timeout=1.0)
            slots = list(self._slots.values())
            self._slots.clear()
            self._cond.notify_all()
        for slot in slots:
            try:
                self._close_shard(slot)
            except Exception:
                log.warning("closing the shard %s failed", slot.path, exc_info=True)


def _add_multi_vector(path: Path) -> None:
    """Give a shard created before the multilingual vector existed that vector (its stored
    config must name it before the shard can be loaded with the current config)."""
    try:
        vectors = json.loads((path / CONFIG_FILE).read_text()).get("vectors", {})
    except (OSError, ValueError):
        return  # loading reports what is wrong with the shard
    if DENSE_MULTI in vectors:
        return
    shard = qe.EdgeShard.load(str(path))
    try:
        shard.update(
            qe.UpdateOperation.create_dense_vector(DENSE_MULTI, MULTI_DIM, qe.Distance.Cosine)
        )
        shard.flush()
    finally:
        shard.close()
    log.info("added the multilingual vector to the vector index %s", path)
