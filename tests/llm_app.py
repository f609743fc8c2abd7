"""The app wired to the test suite's OpenAI-compatible server, and an account that has the
two brochure documents indexed: the setting of the model-backed refine and copy tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi.testclient import TestClient

from pitchcraft.web.app import create_app
from tests.conftest import make_settings, register
from tests.docs_helpers import upload, wait_final
from tests.llm_server import FakeLLM
from tests.test_refine import BROCHURE, NETWORK

MODEL = "fake-model"


@contextmanager
def fake_llm(key: str) -> Iterator[FakeLLM]:
    with FakeLLM(api_key=key, model=MODEL) as fake:
        yield fake


@contextmanager
def app_with_llm(
    data_dir: Path, llm: FakeLLM, key: str, **overrides: object
) -> Iterator[TestClient]:
    settings = make_settings(
        data_dir,
        clear_documents_on_login=False,
        llm_base_url=llm.base_url,
        llm_api_key=key,
        llm_model=MODEL,
        **overrides,
    )
    with TestClient(create_app(settings)) as c:
        yield c


def register_with_brochures(client: TestClient, email: str) -> str:
    """A new account's token once both brochure documents are indexed."""
    token = register(client, email)
    entries = upload(
        client, token, ("acme-shield.txt", BROCHURE.encode()), ("acme-mesh.md", NETWORK.encode())
    )
    assert all(wait_final(client, token, e["id"])["status"] == "indexed" for e in entries)
    return token
