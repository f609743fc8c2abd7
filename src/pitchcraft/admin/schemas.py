"""Request and response bodies of the administration API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pitchcraft.admin.model import MAX_KEY_CHARS, MAX_MODEL_CHARS, ModelView
from pitchcraft.admin.users import UserRow
from pitchcraft.llm.probe import ProbeResult

MAX_URL_CHARS = 2048


class LlmSettingOut(BaseModel):
    base_url: str | None
    model: str
    api_key_set: bool
    source: Literal["app", "environment"]
    # The saved key was sealed under another server secret: save it again.
    key_unreadable: bool = False
    error: str | None = None

    @classmethod
    def of(cls, view: ModelView) -> LlmSettingOut:
        return cls(
            base_url=view.base_url,
            model=view.model,
            api_key_set=view.api_key_set,
            source=view.source,
            key_unreadable=view.key_unreadable,
            error="model key unreadable, save it again" if view.key_unreadable else None,
        )


class LlmSettingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(min_length=1, max_length=MAX_URL_CHARS)
    model: str = Field(min_length=1, max_length=MAX_MODEL_CHARS)
    # Write-only. Omitted: keep the saved key; "": no key.
    api_key: str | None = Field(default=None, max_length=MAX_KEY_CHARS)


class LlmTestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(min_length=1, max_length=MAX_URL_CHARS)
    # Omitted: the saved key, when base_url is the saved endpoint.
    api_key: str | None = Field(default=None, max_length=MAX_KEY_CHARS)
    model: str | None = Field(default=None, max_length=MAX_MODEL_CHARS)


class LlmTestOut(BaseModel):
    ok: bool
    models: list[str]
    latency_ms: float
    error: str | None

    @classmethod
    def of(cls, result: ProbeResult) -> LlmTestOut:
        return cls(
            ok=result.ok, models=result.models, latency_ms=result.latency_ms, error=result.error
        )


class PresetOut(BaseModel):
    id: str
    label: str
    base_url: str
    needs_key: bool
    detected: bool | None  # None: not tried (only local servers are)
    models: list[str]


class AdminUserOut(UserRow):
    @classmethod
    def of(cls, row: UserRow) -> AdminUserOut:
        return cls(**row.__dict__)


class AdminUserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    is_admin: bool | None = None
    is_subscribed: bool | None = None
    disabled: bool | None = None
