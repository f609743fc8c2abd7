"""`pitchcraft backup` and `pitchcraft restore`: one archive holding a consistent copy of a
Pitchcraft data location, taken while the server runs.

The archive is a tar file (gzip-compressed when its name ends in .tar.gz or .tgz):

    database/pitchcraft.db          SQLite: the online backup API's copy (one consistent read)
    database/pitchcraft.pgdump      PostgreSQL: `pg_dump --format=custom` of the app's schema
    storage/{user_id}/{file}        every stored upload the database snapshot refers to
    qdrant/user_{id}_documents/...  the embedded vector index (Qdrant Edge shards), sparse
    manifest.json                   last: versions, counts, and size + sha256 of every entry

Consistency. The database snapshot comes first and is the truth; files are copied after it,
only those its rows refer to (an upload is written before its row, and never changed after, so
every row of the snapshot has its file on disk unless it was deleted since). A file missing
because its document was deleted while the backup ran (a sign-in clears documents by default)
is listed in the manifest, and restore deletes that row too: the result is the state just after
that deletion. A file missing for any other reason is reported.

Vectors are derived data (`pitchcraft reindex` rebuilds them from the database and files),
and the running server owns the embedded shards: another process cannot open them. So backup
copies each user's shard directory as files (skipping the holes of its sparse, preallocated
files), then opens the *copy* in a child process and counts points per document against the
snapshot's `chunks`. A copy that does not match (written to mid-copy) is copied again; one that
never matches is left out. Restore runs the same check against the restored database and
deletes and re-queues (through the ingestion queue, see documents/reindex.py) every user whose
index is missing, damaged or different. With QDRANT_URL the archive holds no vectors (snapshot
the Qdrant server with its own tools); restore checks what the server has and re-queues the rest.

PostgreSQL: pg_dump runs in the snapshot exported by a REPEATABLE READ transaction, in which
the counts and document list of the manifest are read too. Restore creates the schema with the
migrations at the archive's revision, loads each table's rows from the dump (`pg_restore
--data-only`, streamed into COPY), resets the sequences, then migrates to the current head.
This fills any empty schema, whatever its name, which a plain pg_restore (schema-qualified)
cannot; the dump itself stays a standard file an operator can pg_restore by hand.

Restore refuses a target that holds data, verifies every checksum before writing anything,
and undoes what it wrote if it fails half-way: it only ever fills an empty location.

The modules: format (entry names, the error, the reports), archive (the tar file: writing,
checking, extracting; sparse copies), databases (snapshot and load), vectors (the Qdrant Edge
shards), and the two commands, create and restore.
"""

from __future__ import annotations

from pitchcraft.ops.backup.archive import verify_archive
from pitchcraft.ops.backup.create import create_backup
from pitchcraft.ops.backup.format import BackupError, BackupReport, RestoreReport
from pitchcraft.ops.backup.restore import restore_backup

__all__ = [
    "BackupError",
    "BackupReport",
    "RestoreReport",
    "create_backup",
    "restore_backup",
    "verify_archive",
]
