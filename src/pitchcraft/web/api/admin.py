"""/admin: the model connection and the accounts (administrators only, 403 otherwise)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response, status

from pitchcraft.admin.presets import detect
from pitchcraft.admin.schemas import (
    AdminUserOut,
    AdminUserPatch,
    LlmSettingIn,
    LlmSettingOut,
    LlmTestIn,
    LlmTestOut,
    PresetOut,
)
from pitchcraft.web.deps import AdminUser, ContainerDep

router = APIRouter(prefix="/admin", tags=["administration"])


@router.get("/llm", response_model=LlmSettingOut, summary="The model jobs use (never the key)")
def get_llm(admin: AdminUser, container: ContainerDep) -> LlmSettingOut:
    return LlmSettingOut.of(container.model.view())


@router.put(
    "/llm",
    response_model=LlmSettingOut,
    summary="Save the model connection; the next job uses it, in every process",
    description='`api_key` is write-only: omitted keeps the saved key, `""` clears it.',
)
def put_llm(body: LlmSettingIn, admin: AdminUser, container: ContainerDep) -> LlmSettingOut:
    view = container.model.save(
        base_url=body.base_url, model=body.model, api_key=body.api_key, by=admin.id
    )
    return LlmSettingOut.of(view)


@router.delete("/llm", response_model=LlmSettingOut, summary="Back to the LLM_* settings")
def delete_llm(admin: AdminUser, container: ContainerDep) -> LlmSettingOut:
    return LlmSettingOut.of(container.model.clear())


@router.post(
    "/llm/test",
    response_model=LlmTestOut,
    summary="Try an endpoint: its models and, when a model is named, one tiny chat call",
    description=(
        "`ok: false` with a reason for a dead endpoint, a refused key, an answer that is not "
        "JSON or a timeout (10 s). Without `api_key`, the saved key is used only for the "
        "saved base URL. No redirect to another host is followed."
    ),
)
def test_llm(body: LlmTestIn, admin: AdminUser, container: ContainerDep) -> LlmTestOut:
    result = container.model.test(base_url=body.base_url, api_key=body.api_key, model=body.model)
    return LlmTestOut.of(result)


@router.get(
    "/llm/presets",
    response_model=list[PresetOut],
    summary="The model servers offered, a local Ollama detected with its models",
)
def presets(admin: AdminUser, container: ContainerDep) -> list[PresetOut]:
    return [
        PresetOut(
            id=d.preset.id,
            label=d.preset.label,
            base_url=d.preset.base_url,
            needs_key=d.preset.needs_key,
            detected=d.detected,
            models=d.models,
        )
        for d in detect(container.settings.ollama_base_url)
    ]


@router.get("/users", response_model=list[AdminUserOut], summary="Accounts, oldest first")
def list_users(
    admin: AdminUser,
    container: ContainerDep,
    response: Response,
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0, le=10_000_000),
) -> list[AdminUserOut]:
    rows, total = container.users.list(limit=limit, offset=offset)
    response.headers["X-Total-Count"] = str(total)
    return [AdminUserOut.of(r) for r in rows]


@router.patch(
    "/users/{user_id}",
    response_model=AdminUserOut,
    status_code=status.HTTP_200_OK,
    summary="Promote/demote, (un)subscribe, disable/enable an account",
    description="409 `last_admin` for the last administrator; a disabled account's sessions end.",
)
def patch_user(
    user_id: int, body: AdminUserPatch, admin: AdminUser, container: ContainerDep
) -> AdminUserOut:
    row = container.users.update(
        user_id,
        is_admin=body.is_admin,
        is_subscribed=body.is_subscribed,
        disabled=body.disabled,
        actor_id=admin.id,
    )
    return AdminUserOut.of(row)
