"""/documents: upload, list, get, delete; the original file, page previews, passages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import FileResponse

from pitchcraft.documents.enrich import multilingual_active
from pitchcraft.documents.sample_library import add_samples, example_text
from pitchcraft.documents.schemas import DocumentOut, PassageContextOut, SampleExampleOut
from pitchcraft.documents.sources import DEFAULT_RADIUS, MAX_HIGHLIGHT_CHARS, MAX_RADIUS
from pitchcraft.web.deps import ContainerDep, CurrentUser
from pitchcraft.web.downloads import FILE_RESPONSES, PNG_RESPONSES, file_response, png_response
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
    description=(
        "One entry per file, in order. A file whose content (SHA-256) the caller already has "
        "is not stored or indexed again: its entry is the existing document, with "
        "`duplicate_of` set to that document's id."
    ),
)
async def upload(request: Request, user: CurrentUser, container: ContainerDep) -> list[DocumentOut]:
    uploaded = await upload_for(request, container, user.id)
    active = multilingual_active(container.settings)
    return [
        DocumentOut.of(u.document, duplicate_of=u.duplicate_of, multilingual=active)
        for u in uploaded
    ]


@router.post(
    "/samples",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=list[DocumentOut],
    summary="Add the bundled sample documents to the caller's documents",
)
def add_sample_documents(user: CurrentUser, container: ContainerDep) -> list[DocumentOut]:
    """A brochure, a datasheet, a slide deck and a price list of a made-up product, queued
    for indexing as ordinary documents of the caller; `GET /documents/samples/example` has
    marketing copy to check against them."""
    active = multilingual_active(container.settings)
    return [
        DocumentOut.of(d, multilingual=active) for d in add_samples(container.documents, user.id)
    ]


@router.get(
    "/samples/example",
    response_model=SampleExampleOut,
    summary="Marketing copy to check against the sample documents",
)
def sample_example(user: CurrentUser) -> SampleExampleOut:
    return SampleExampleOut(marketing_text=example_text())


@router.get("", response_model=list[DocumentOut], summary="The caller's documents, newest first")
@router.get("/list", response_model=list[DocumentOut], summary="The same list (the original path)")
def list_documents(user: CurrentUser, container: ContainerDep) -> list[DocumentOut]:
    active = multilingual_active(container.settings)
    return [DocumentOut.of(d, multilingual=active) for d in container.documents.list(user.id)]


@router.get("/{document_id}", response_model=DocumentOut)
def get_document(document_id: str, user: CurrentUser, container: ContainerDep) -> DocumentOut:
    return DocumentOut.of(
        container.documents.get(user.id, document_id),
        multilingual=multilingual_active(container.settings),
    )


@router.delete("/{document_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_document(document_id: str, user: CurrentUser, container: ContainerDep) -> Response:
    container.documents.delete(user.id, document_id)
    return Response(status_code=204)


@router.get(
    "/{document_id}/file",
    response_class=FileResponse,
    responses=FILE_RESPONSES,
    summary="The original file, as uploaded (an attachment)",
)
def download_document(document_id: str, user: CurrentUser, container: ContainerDep) -> Response:
    return file_response(container.sources.original(user.id, document_id))


@router.get(
    "/{document_id}/pages/{page}/preview",
    response_class=Response,
    responses=PNG_RESPONSES,
    summary="A page (slide) as a PNG, the passage in `highlight` highlighted",
    description=(
        "PDF pages are drawn by PyMuPDF; slides by LibreOffice when the server has it, else "
        "their text boxes are drawn at their places. 404 for a page the document does not "
        "have; 422 (`document_has_no_pages`) for a Word, text, Markdown or HTML document, "
        "and (`preview_failed`) for a file that cannot be drawn."
    ),
)
def preview_page(
    document_id: str,
    page: int,
    user: CurrentUser,
    container: ContainerDep,
    highlight: Annotated[str | None, Query(max_length=MAX_HIGHLIGHT_CHARS)] = None,
    width: Annotated[int, Query(ge=200, le=2000)] = 1200,
) -> Response:
    png = container.sources.page_image(user.id, document_id, page, highlight, width=width)
    return png_response(png)


@router.get(
    "/{document_id}/passages/{chunk_index}/context",
    response_model=PassageContextOut,
    summary="A passage with its neighbouring passages, in document order",
)
def passage_context(
    document_id: str,
    chunk_index: int,
    user: CurrentUser,
    container: ContainerDep,
    radius: Annotated[int, Query(ge=0, le=MAX_RADIUS)] = DEFAULT_RADIUS,
) -> PassageContextOut:
    found = container.sources.in_context(user.id, document_id, chunk_index, radius)
    return PassageContextOut.of(found)
