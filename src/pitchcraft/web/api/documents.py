"""/documents: upload, list, get, delete."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from pitchcraft.documents.schemas import DocumentOut
from pitchcraft.web.deps import ContainerDep, CurrentUser
from pitchcraft.web.uploads import upload_for

router = APIRouter(prefix="/documents", tags=["documents"])


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
