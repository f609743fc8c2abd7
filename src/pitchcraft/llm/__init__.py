"""Language models: an OpenAI-compatible endpoint, or none (evidence mode)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pitchcraft.llm.base import LLM, Completion, LLMConfigError, LLMError

if TYPE_CHECKING:
    from pitchcraft.settings import Settings

__all__ = ["LLM", "Completion", "LLMConfigError", "LLMError", "build_llm", "describe_llm"]


def build_llm(settings: Settings) -> LLM | None:
    """The configured model, or None when LLM_BASE_URL is unset: jobs then run in
    evidence mode. Raises LLMConfigError (naming the setting) for settings that cannot
    work. Touches no network."""
    if not settings.llm_base_url:
        return None
    from pitchcraft.llm.openai import OpenAIChat

    return OpenAIChat(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key,
        model=settings.llm_model,
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,
        timeout=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
    )


def describe_llm(settings: Settings) -> str:
    """One line for operators (`pitchcraft doctor`): which model at which endpoint, never
    the key. Raises LLMConfigError like build_llm. Touches no network."""
    if not settings.llm_base_url:
        return "none configured (evidence mode)"
    from pitchcraft.core.openai_compat import display_url
    from pitchcraft.llm.openai import chat_completions_url

    url = display_url(chat_completions_url(settings.llm_base_url))
    if not settings.llm_model.strip():
        raise LLMConfigError("LLM_MODEL must name the endpoint's model")
    key = "API key set" if settings.llm_api_key else "no API key"
    return f"{settings.llm_model.strip()} at {url} ({key}; not contacted by doctor)"
