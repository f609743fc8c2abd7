"""The model the refine jobs use: the connection an administrator saved in the app, else
the LLM_* settings. Read from the database at each job, in every process, so a save takes
effect at the next job without a restart."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pitchcraft.admin.models import LLM_SETTING_ID, LlmSetting
from pitchcraft.core.db import Database, utcnow
from pitchcraft.core.errors import Invalid
from pitchcraft.core.secretbox import SecretBox, Unreadable
from pitchcraft.llm import LLM, LLMConfigError, build_llm
from pitchcraft.llm.probe import BadEndpoint, ProbeResult, check_base_url, probe
from pitchcraft.settings import Settings

KEY_UNREADABLE = "model key unreadable, save it again"
MAX_MODEL_CHARS = 200
MAX_KEY_CHARS = 4096
SECRET_PURPOSE = "llm-api-key"  # noqa: S105 - a label for the key derivation

Source = Literal["app", "environment"]


class ModelKeyUnreadable(LLMConfigError):
    """The saved key was sealed under another server secret."""

    def __init__(self) -> None:
        super().__init__(KEY_UNREADABLE)


@dataclass(frozen=True)
class ModelView:
    """What an administrator sees: never the key."""

    base_url: str | None
    model: str
    api_key_set: bool
    source: Source
    key_unreadable: bool = False


@dataclass(frozen=True)
class ModelConfig:
    base_url: str | None
    model: str
    api_key: str | None = field(repr=False)
    source: Source


def check_model_name(model: str) -> str:
    name = model.strip()
    if not name:
        raise Invalid("Name the model (pick one from the test, or type its name).", code="no_model")
    if len(name) > MAX_MODEL_CHARS or not name.isprintable():
        raise Invalid(
            f"A model name is at most {MAX_MODEL_CHARS} printable characters.", code="bad_model"
        )
    return name


def check_api_key(api_key: str) -> str:
    key = api_key.strip()
    if len(key) > MAX_KEY_CHARS or not (key.isascii() and key.isprintable()):
        raise Invalid(
            f"An API key is at most {MAX_KEY_CHARS} printable ASCII characters.", code="bad_api_key"
        )
    return key


def checked_url(base_url: str) -> str:
    try:
        return check_base_url(base_url)
    except BadEndpoint as exc:
        raise Invalid(str(exc), code="bad_base_url") from exc


@dataclass
class SavedModel:
    db: Database
    settings: Settings
    box: SecretBox
    _cache: tuple[ModelConfig, LLM | None] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- reading -------------------------------------------------------------------------

    def _row(self) -> LlmSetting | None:
        with self.db.session() as s:
            row = s.get(LlmSetting, LLM_SETTING_ID)
            if row is not None:
                s.expunge(row)
            return row

    def view(self) -> ModelView:
        row = self._row()
        if row is None:
            s = self.settings
            return ModelView(s.llm_base_url, s.llm_model, bool(s.llm_api_key), "environment")
        unreadable = False
        if row.api_key_sealed is not None:
            try:
                self.box.open(row.api_key_sealed)
            except Unreadable:
                unreadable = True
        return ModelView(row.base_url, row.model, row.api_key_sealed is not None, "app", unreadable)

    def effective(self) -> ModelConfig:
        """The configuration for the next job; ModelKeyUnreadable when the saved key was
        sealed under another secret."""
        row = self._row()
        if row is None:
            s = self.settings
            return ModelConfig(s.llm_base_url, s.llm_model, s.llm_api_key, "environment")
        key = None
        if row.api_key_sealed is not None:
            try:
                key = self.box.open(row.api_key_sealed)
            except Unreadable:
                raise ModelKeyUnreadable() from None
        return ModelConfig(row.base_url, row.model, key, "app")

    def llm(self) -> LLM | None:
        """The client for the effective configuration (None: evidence mode), reused while
        the configuration stays the same. Raises LLMConfigError."""
        config = self.effective()
        with self._lock:
            if self._cache is not None and self._cache[0] == config:
                return self._cache[1]
            client = build_llm(
                self.settings.model_copy(
                    update={
                        "llm_base_url": config.base_url,
                        "llm_api_key": config.api_key,
                        "llm_model": config.model,
                    }
                )
            )
            # The previous client is left to the garbage collector: a job may still be
            # streaming through it.
            self._cache = (config, client)
            return client

    def close(self) -> None:
        with self._lock:
            client = self._cache[1] if self._cache else None
            self._cache = None
        close = getattr(client, "close", None)
        if callable(close):
            close()

    def model_name(self) -> str | None:
        """The model the next job uses, None in evidence mode (for the pages)."""
        view = self.view()
        return view.model if view.base_url else None

    def status(self) -> str:
        """One line for /health: the model's name, "none", or that the key is unreadable."""
        view = self.view()
        if view.key_unreadable:
            return KEY_UNREADABLE
        return view.model if view.base_url else "none"

    # -- changing ------------------------------------------------------------------------

    def save(
        self, *, base_url: str, model: str, api_key: str | None, by: int | None = None
    ) -> ModelView:
        """Save the whole connection. `api_key`: None keeps the saved key, "" clears it."""
        url = checked_url(base_url)
        name = check_model_name(model)
        sealed_new = self.box.seal(key) if api_key and (key := check_api_key(api_key)) else None
        for attempt in (1, 2):
            try:
                with self.db.session() as s:
                    # Locked: concurrent saves run one after the other, so the last one
                    # wins whole (never one's URL with another's key).
                    row = s.scalar(
                        select(LlmSetting).where(LlmSetting.id == LLM_SETTING_ID).with_for_update()
                    )
                    if row is None:
                        row = LlmSetting(id=LLM_SETTING_ID, base_url=url, model=name)
                        s.add(row)
                    row.base_url, row.model, row.updated_by = url, name, by
                    row.updated_at = utcnow()
                    if api_key is not None:
                        row.api_key_sealed = sealed_new
                break
            except IntegrityError:  # another process inserted the row first
                if attempt == 2:
                    raise
        return self.view()

    def clear(self) -> ModelView:
        """Back to the LLM_* settings."""
        with self.db.session() as s:
            row = s.get(LlmSetting, LLM_SETTING_ID)
            if row is not None:
                s.delete(row)
        return self.view()

    def saved_key_for(self, base_url: str) -> str | None:
        """The saved key, only for the saved endpoint: testing another address never sends
        it there."""
        row = self._row()
        if row is None or row.api_key_sealed is None:
            return None
        if row.base_url.strip().rstrip("/") != base_url.strip().rstrip("/"):
            return None
        try:
            return self.box.open(row.api_key_sealed)
        except Unreadable:
            return None

    def test(self, *, base_url: str, api_key: str | None, model: str | None) -> ProbeResult:
        """Try an endpoint (its models, one tiny chat call when a model is named). The
        endpoint's failures are in the result; only input that cannot be tried raises."""
        url = checked_url(base_url)
        name = check_model_name(model) if model and model.strip() else None
        key = self.saved_key_for(url) if api_key is None else check_api_key(api_key)
        try:
            return probe(url, key, name)
        except BadEndpoint as exc:
            raise Invalid(str(exc), code="bad_base_url") from exc
