"""Streaming multipart uploads: each file goes straight to disk, never whole into memory."""

from __future__ import annotations

from typing import IO

from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from pitchcraft.container import Container
from pitchcraft.core.errors import Invalid, Unsupported
from pitchcraft.documents.incoming import IncomingFile
from pitchcraft.documents.service import Uploaded
from pitchcraft.documents.storage import FileStore, clean_filename
from pitchcraft.web.multipart import PartHeaders, parser

FILES_FIELD = b"files"
CUT_SHORT = "The upload was cut short or is not valid multipart data."


class _Receiver(PartHeaders):
    """python-multipart callbacks writing each file part to its own temp file."""

    def __init__(
        self, store: FileStore, user_id: int, *, max_bytes: int, max_files: int, limit_text: str
    ):
        super().__init__()
        self.store, self.user_id = store, user_id
        self.max_bytes, self.max_files, self.limit_text = max_bytes, max_files, limit_text
        self.files: list[IncomingFile] = []
        self._current: IncomingFile | None = None
        self._out: IO[bytes] | None = None
        self.ended = False

    def on_part_begin(self) -> None:
        super().on_part_begin()
        self._current = None

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self.headers.get("content-disposition", b""))
        raw_name = params.get(b"filename")
        if params.get(b"name") != FILES_FIELD or raw_name is None:
            return  # a plain form field (e.g. csrftoken) or another part: not a file
        if raw_name == b"":
            return  # a file input with no file chosen: browsers send an empty part
        try:
            name = raw_name.decode("utf-8")
        except UnicodeDecodeError:
            name = raw_name.decode("latin-1")
        incoming = IncomingFile(filename=clean_filename(name))
        self.files.append(incoming)
        self._current = incoming
        if len(self.files) > self.max_files:
            incoming.refused = f"too many files in one upload (at most {self.max_files})"
            return
        incoming.temp = self.store.new_temp(self.user_id)
        self._out = incoming.temp.open("wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        f = self._current
        if f is None:
            return
        f.size += end - start
        if f.refused is not None:
            return
        if f.size > self.max_bytes:
            f.refused = f"file is larger than the {self.limit_text} limit"
            self._discard(f)
            return
        assert self._out is not None
        chunk = data[start:end]
        self._out.write(chunk)
        f._hash.update(chunk)

    def on_part_end(self) -> None:
        f = self._current
        if f is not None and self._out is not None:
            self._out.close()
            self._out = None
            f.sha256 = f._hash.hexdigest()
        self._current = None

    def on_end(self) -> None:
        self.ended = True

    def _discard(self, f: IncomingFile) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        if f.temp is not None:
            f.temp.unlink(missing_ok=True)
            f.temp = None

    def abort(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        for f in self.files:
            if f.temp is not None:
                f.temp.unlink(missing_ok=True)
                f.temp = None


async def receive_files(
    request: Request, store: FileStore, user_id: int, *, max_bytes: int, max_files: int
) -> list[IncomingFile]:
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise Unsupported(
            "Send the files as multipart/form-data, one part per file named `files`.",
            code="multipart_required",
        )
    limit_text = f"{max_bytes // (1024 * 1024)} MB"
    receiver = _Receiver(
        store, user_id, max_bytes=max_bytes, max_files=max_files, limit_text=limit_text
    )
    try:
        stream = parser(boundary, receiver)
        async for chunk in request.stream():
            stream.write(chunk)
        stream.finalize()
    except ValueError as exc:  # python-multipart's parse errors, a boundary too long
        receiver.abort()
        raise Invalid(CUT_SHORT, code="bad_multipart") from exc
    except BaseException:  # an AppError, the client leaving, the body limit, a full disk
        receiver.abort()
        raise
    if receiver._current is not None or not receiver.ended:
        # The last file, or the closing boundary, never came.
        receiver.abort()
        raise Invalid("The upload was cut short before the last file ended.", code="bad_multipart")
    if not receiver.files:
        raise Invalid(
            "No files in the upload: send one or more parts named `files`, each a file"
            " with a file name.",
            code="no_files",
        )
    return receiver.files


async def upload_for(request: Request, container: Container, user_id: int) -> list[Uploaded]:
    """Receive the request's files and hand them to the documents service (API and page),
    with the session the request was signed in with."""
    settings = container.settings
    throttle = container.accounts.throttle
    # Refused before the body is read when nothing more can be accepted anyway.
    await run_in_threadpool(container.documents.check_room, user_id)
    throttle.uploads(user_id=user_id, files=0)
    incoming = await receive_files(
        request,
        container.store,
        user_id,
        max_bytes=settings.max_upload_mb * 1024 * 1024,
        max_files=settings.max_files_per_upload,
    )
    try:
        throttle.uploads(user_id=user_id, files=len(incoming))
    except BaseException:
        for f in incoming:
            if f.temp is not None:
                f.temp.unlink(missing_ok=True)
        raise
    session_id = getattr(request.state, "session_id", None)
    return await run_in_threadpool(
        lambda: container.documents.upload(user_id, incoming, session_id=session_id)
    )
