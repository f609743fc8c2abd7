"""/account: the signed-in user's summary, password, export and deletion."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import StreamingResponse

from pitchcraft.accounts.schemas import AccountOut
from pitchcraft.auth.schemas import PasswordChangeIn, PasswordIn
from pitchcraft.container import Container
from pitchcraft.core.db import utcnow
from pitchcraft.web.deps import ContainerDep, CurrentSession, CurrentUser, client_key

router = APIRouter(prefix="/account", tags=["accounts"])

ZIP_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        "description": "A zip: account.json, documents.json, jobs.json, prompt_template.json, "
        "manifest.json and files/ (the original files).",
    }
}


@router.get("", response_model=AccountOut, summary="The caller's account and what it holds")
def account(user: CurrentUser, container: ContainerDep) -> AccountOut:
    return AccountOut.of(container.account_data.summary(user.id))


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Change the password; every other session of the caller ends",
    description="422 `wrong_password` when `current_password` is not the password.",
)
def change_password(
    body: PasswordChangeIn, request: Request, signed: CurrentSession, container: ContainerDep
) -> Response:
    container.accounts.change_password(
        user_id=signed.user.id,
        session_id=signed.session_id,
        current=body.current_password,
        new=body.new_password,
        client=client_key(request),
    )
    return Response(status_code=204)


def export_response(container: Container, user_id: int) -> StreamingResponse:
    """The export as a streamed download (the API route and the Account page)."""
    chunks = container.account_data.export(user_id)
    name = f"pitchcraft-export-{utcnow():%Y%m%d-%H%M%S}.zip"
    return StreamingResponse(
        chunks,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses=ZIP_RESPONSES,
    summary="Everything the caller owns, as a zip (streamed)",
)
def export(user: CurrentUser, container: ContainerDep) -> StreamingResponse:
    return export_response(container, user.id)


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete the account and everything it holds (files, vectors, rows, sessions)",
    description="422 `wrong_password` when `password` is not the password.",
)
def delete_account(
    body: PasswordIn, request: Request, user: CurrentUser, container: ContainerDep
) -> Response:
    container.account_data.delete(user.id, password=body.password, client=client_key(request))
    return Response(status_code=204)
