"""The model servers the Model page offers, and trying the local one (Ollama) at once."""

from __future__ import annotations

from dataclasses import dataclass, field

from pitchcraft.llm.probe import ProbeResult, probe

DETECT_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Preset:
    id: str
    label: str
    base_url: str
    needs_key: bool
    hint: str


@dataclass
class Detected:
    preset: Preset
    detected: bool | None = None  # None: not tried
    models: list[str] = field(default_factory=list)


def presets(ollama_base_url: str) -> list[Preset]:
    return [
        Preset("ollama", "Ollama", ollama_base_url, False, "Models you pulled with ollama pull."),
        Preset("openai", "OpenAI", "https://api.openai.com/v1", True, "Needs an API key."),
        Preset("vllm", "vLLM", "http://localhost:8000/v1", False, "vllm serve MODEL"),
        Preset("llamacpp", "llama.cpp server", "http://localhost:8080/v1", False, "llama-server"),
        Preset("lmstudio", "LM Studio", "http://localhost:1234/v1", False, "Its local server"),
        Preset("other", "Other OpenAI-compatible", "", False, "Any /v1 chat completions API."),
    ]


def detect(ollama_base_url: str) -> list[Detected]:
    """Every preset; Ollama tried (its models listed when it answers), briefly."""
    out = []
    for preset in presets(ollama_base_url):
        found = Detected(preset)
        if preset.id == "ollama" and preset.base_url:
            result: ProbeResult = probe(preset.base_url, None, None, timeout=DETECT_TIMEOUT_S)
            found.detected = result.ok
            found.models = result.models
        out.append(found)
    return out
