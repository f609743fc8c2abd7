"""build_llm (settings to a chat client, or none), and what /health and `pitchcraft doctor`
say about the language model, without spending a model call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pitchcraft.llm import LLMConfigError, build_llm
from pitchcraft.llm.openai import OpenAIChat
from pitchcraft.ops.doctor import run_checks
from pitchcraft.settings import Settings
from pitchcraft.web.app import create_app
from tests.conftest import FAKE_LLM_KEY, make_settings
from tests.llm_server import FakeLLM

KEY = FAKE_LLM_KEY


def test_build_llm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def settings(**values: Any) -> Settings:
        return make_settings(tmp_path, **values)

    assert build_llm(settings()) is None  # evidence mode
    monkeypatch.setenv("LLM_BASE_URL", "")
    assert build_llm(Settings(_env_file=None, data_dir=tmp_path)) is None
    llm = build_llm(
        settings(
            llm_base_url="http://ollama:11434",
            llm_api_key=KEY,
            llm_model="llama3.1",
            llm_timeout_s=7,
            llm_temperature=0.1,
            llm_max_tokens=99,
            llm_max_retries=1,
        )
    )
    assert isinstance(llm, OpenAIChat)
    assert llm.url == "http://ollama:11434/v1/chat/completions"
    assert (llm.model, llm.timeout, llm.temperature, llm.max_tokens, llm.max_retries) == (
        "llama3.1",
        7,
        0.1,
        99,
        1,
    )
    assert KEY not in repr(llm)
    llm.close()
    with pytest.raises(LLMConfigError, match="LLM_BASE_URL"):
        build_llm(settings(llm_base_url="ollama:11434"))
    with pytest.raises(LLMConfigError, match="LLM_MODEL"):
        build_llm(settings(llm_base_url="http://ollama:11434", llm_model="  "))


def test_health_and_doctor_name_the_model(tmp_path: Path, fake_llm: FakeLLM) -> None:
    plain = make_settings(tmp_path / "a")
    assert TestClient(create_app(plain)).get("/health").json()["llm"] == "none"
    (llm,) = [c for c in run_checks(plain) if c.name == "llm"]
    assert llm.ok and llm.detail == "none configured (evidence mode)"

    configured = make_settings(
        tmp_path / "b", llm_base_url=fake_llm.base_url, llm_api_key=KEY, llm_model="qwen2.5"
    )
    assert TestClient(create_app(configured)).get("/health").json()["llm"] == "qwen2.5"
    (llm,) = [c for c in run_checks(configured) if c.name == "llm"]
    assert llm.ok
    assert llm.detail.startswith(f"qwen2.5 at {fake_llm.base_url}/chat/completions")
    assert KEY not in llm.detail
    assert fake_llm.requests == []  # neither /health nor doctor spends a model call

    broken = make_settings(tmp_path / "c", llm_base_url="ollama:11434")
    (llm,) = [c for c in run_checks(broken) if c.name == "llm"]
    assert not llm.ok and "LLM_BASE_URL" in llm.detail
