"""/api/v1/documents: upload, list, get, delete."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from pitchcraft.auth.deps import ContainerDep, CurrentUser
from pitchcraft.container import Container
from pitchcraft.documents.models import Document
from pitchcraft.documents.upload import receive_files
from pitchcraft.errors_http import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1/documents", tags=["documents"], responses=ERROR_RESPONSES)


class DocumentOut(BaseModel):
    id: str
    filename: str
    file_type: str
    size: int
    status: str
    error: str | None
    progress: float
    pages: int | None
    chunks: int
    notes: str | None
    created_at: datetime
    indexed_at: datetime | None

    @classmethod
    def of(cls, d: Document) -> DocumentOut:
        return cls(
            id=d.id,
            filename=d.filename,
            file_type=d.file_type,
            size=d.size,
            status=d.status,
            error=d.error,
            progress=round(d.progress, 4),
            pages=d.pages,
            chunks=d.chunks,
            notes=d.notes,
            created_at=d.created_at,
            indexed_at=d.indexed_at,
        )


UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "minItems": 1,
                        }
                    },
                    "required": ["files"],
                }
            }
        },
    }
}


async def upload_for(request: Request, container: Container, user_id: int) -> list[Document]:
    settings = container.settings
    incoming = await receive_files(
        request,
        container.store,
        user_id,
        max_bytes=settings.max_upload_mb * 1024 * 1024,
        max_files=settings.max_files_per_upload,
    )
    return await run_in_threadpool(container.documents.accept, user_id, incoming)


@router.post(
    "/upload",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=list[DocumentOut],
    openapi_extra=UPLOAD_DOC,
    summary="Upload one or more files (multipart, parts named `files`)",
)
async def upload(request: Request, user: CurrentUser, container: ContainerDep) -> list[DocumentOut]:
    return [DocumentOut.of(d) for d in await upload_for(request, container, user.id)]


@router.get("", response_model=list[DocumentOut], summary="The caller's documents, newest first")
@router.get("/list", response_model=list[DocumentOut], summary="The same list (the original path)")
def list_documents(user: CurrentUser, container: ContainerDep) -> list[DocumentOut]:
    return [DocumentOut.of(d) for d in container.documents.list(user.id)]


@router.get("/{document_id}", response_model=DocumentOut)
def get_document(document_id: str, user: CurrentUser, container: ContainerDep) -> DocumentOut:
    return DocumentOut.of(container.documents.get(user.id, document_id))


@router.delete("/{document_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_document(document_id: str, user: CurrentUser, container: ContainerDep) -> Response:
    container.documents.delete(user.id, document_id)
    return Response(status_code=204)
