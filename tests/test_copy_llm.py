"""Variants, the shorten retry, the channel and the glossary in the prompt, and the Word
export of a model's copy, against the test suite's OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pitchcraft.channels.presets import PRESETS
from pitchcraft.llm.openai import OpenAIChat
from pitchcraft.refine import variants
from pitchcraft.refine.copy import chars
from pitchcraft.refine.diff import rebuild
from pitchcraft.refine.runner import visible_answer
from tests.conftest import auth
from tests.llm_app import app_with_llm, fake_llm, register_with_brochures
from tests.llm_server import FakeLLM
from tests.test_copy_workflow import tracked_texts
from tests.test_refine import process, wait_job

pytestmark = pytest.mark.timeout(600)

KEY = "sk-test-copy-0123456789"
TEXT = "Acme Shield stops ransomware. It isolates an infected laptop within 30 seconds."


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with fake_llm(KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
def client(llm: FakeLLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("copy-llm") / "data"
    with app_with_llm(data_dir, llm, KEY, llm_timeout_s=10, llm_max_retries=0) as c:
        yield c


@pytest.fixture(scope="module")
def token(client: TestClient) -> str:
    token = register_with_brochures(client, "copy-llm@example.com")
    r = client.put(
        "/api/v1/glossary",
        headers=auth(token),
        json={
            "terms": [{"use": "Acme Shield", "avoid": ["the shield"]}],
            "banned": ["world-class"],
        },
    )
    assert r.status_code == 200, r.text
    return token


def calls_since(llm: FakeLLM, start: int) -> list[Any]:
    return [r for r in llm.requests[start:] if r.path.endswith("/chat/completions")]


def test_three_variants_are_three_overlapping_calls_each_checked(
    client: TestClient, token: str, llm: FakeLLM
) -> None:
    answers = [
        "Acme Shield isolates an infected laptop within 30 seconds [1].",
        "The shield is world-class: it rolls encrypted files back automatically [1].",
        "Acme Shield runs on Windows, macOS and Linux [1].",
    ]
    for text in answers:
        llm.ok(text, latency=0.8)
    start = len(llm.requests)
    job = wait_job(
        client,
        token,
        process(client, token, marketing_text=TEXT, channel="linkedin-post", variants=3),
    )
    assert job["status"] == "succeeded", job
    calls = calls_since(llm, start)
    assert len(calls) == 3
    # One prompt, sent three times; each call started before any of them had finished.
    assert len({str(c.body["messages"]) for c in calls}) == 1
    assert max(c.at for c in calls) < min(c.done for c in calls)
    prompt = calls[0].body["messages"][-1]["content"]
    assert prompt == job["prompt"]
    assert "LinkedIn post: at most 3,000 characters" in prompt
    assert "Write “Acme Shield”, never “the shield”." in prompt
    assert "Never use: “world-class”." in prompt

    got = job["variants"]
    assert sorted(v["text"] for v in got) == sorted(answers)
    assert job["refined_text"] == got[0]["text"]
    assert job["output_claims"] == got[0]["claims"] and job["diff"] == got[0]["diff"]
    for v in got:
        assert v["chars"] == chars(v["text"]) and v["within_limit"] is True
        assert v["claims"] and all(c["verdict"] for c in v["claims"])
        assert rebuild(v["diff"], "before") == TEXT and rebuild(v["diff"], "after") == v["text"]
        assert v["shortened_from"] is None
    styled = next(v for v in got if "world-class" in v["text"])
    assert [(s["kind"], s["term"]) for s in styled["style"]] == [
        ("avoid", "The shield"),
        ("banned", "world-class"),
    ]
    invented = next(v for v in got if "30 seconds" in v["text"])
    assert invented["claims"][0]["verdict"] == "supported"
    assert job["length"] == {"chars": len(TEXT), "max_chars": 3000, "over_by": 0}


def test_a_variant_over_the_limit_is_sent_back_once_then_flagged_never_cut(
    client: TestClient, token: str, llm: FakeLLM
) -> None:
    long_one = "Acme Shield isolates an infected laptop within 30 seconds [1]."
    short_one = "Acme Shield stops ransomware [1]."
    still_long = "Acme Shield rolls encrypted files back automatically [1]."
    llm.ok(long_one).ok(short_one)
    start = len(llm.requests)
    job = wait_job(
        client,
        token,
        process(client, token, marketing_text=TEXT, channel="google-ads-headline"),
    )
    assert job["status"] == "succeeded", job
    first, retry = calls_since(llm, start)
    messages = retry.body["messages"]
    asked = len(first.body["messages"])
    assert messages[:asked] == first.body["messages"]
    assert messages[asked] == {"role": "assistant", "content": long_one}
    assert messages[asked + 1]["role"] == "user"
    assert "Shorten it to at most 30 characters" in messages[asked + 1]["content"]
    (v,) = job["variants"]
    assert v["text"] == short_one and v["within_limit"] is True
    assert v["shortened_from"] == chars(long_one) and v["chars"] == chars(short_one) <= 30

    llm.ok(long_one).ok(still_long)
    start = len(llm.requests)
    job = wait_job(
        client,
        token,
        process(client, token, marketing_text=TEXT, channel="google-ads-headline"),
    )
    assert len(calls_since(llm, start)) == 2, "one retry, no more"
    (v,) = job["variants"]
    assert v["text"] == still_long, "kept whole"
    assert v["within_limit"] is False and v["chars"] == chars(still_long) > 30

    # The Word export tracks the model's copy over the original text.
    r = client.get(f"/api/v1/jobs/{job['job_id']}/export?format=docx", headers=auth(token))
    assert r.status_code == 200
    assert tracked_texts(r.content) == (TEXT, job["refined_text"])
    md = client.get(f"/api/v1/jobs/{job['job_id']}/export?format=md", headers=auth(token)).text
    assert job["refined_text"] in md and "## Claim ledger" in md and "The refined copy" in md


def test_re_running_keeps_channel_and_variants(
    client: TestClient, token: str, llm: FakeLLM
) -> None:
    first = wait_job(
        client, token, process(client, token, marketing_text=TEXT, channel="x-post", variants=2)
    )
    r = client.post(f"/api/v1/jobs/{first['job_id']}/rerun", headers=auth(token))
    again = wait_job(client, token, r.json()["job_id"])
    assert again["channel"]["id"] == "x-post" and len(again["variants"]) == 2


def _text_of(n: int) -> str:
    words = ("Acme Shield stops ransomware on every laptop and rolls files back " * 200)[:n]
    return words.rstrip() + "." if n > 1 else "A"


@pytest.mark.parametrize("channel", PRESETS, ids=lambda c: c.id)
def test_every_preset_s_limit_holds_after_the_retry(channel: Any) -> None:
    over = _text_of(channel.max_chars + 25)
    fits = _text_of(max(1, channel.max_chars - 6))
    with FakeLLM() as fake:
        fake.ok(over).ok(fits)
        chat = OpenAIChat(fake.base_url, None, "fake-model", max_retries=0, timeout=10)
        try:
            (draft,) = variants.write(
                chat,
                [{"role": "user", "content": "Write it."}],
                count=1,
                max_chars=channel.max_chars,
                channel=channel.name,
                visible=visible_answer,
                progress=lambda texts: True,
                every_s=0.05,
            )
        finally:
            chat.close()
        asked = fake.requests[1].body["messages"][-1]["content"]
    assert chars(over) > channel.max_chars
    assert f"at most {channel.max_chars:,} characters" in asked and channel.name in asked
    assert draft.raw == fits and chars(draft.raw) <= channel.max_chars
    assert draft.first_chars == chars(over) and draft.calls == 2


def test_a_failed_variant_fails_the_job_with_the_reason(
    client: TestClient, token: str, llm: FakeLLM
) -> None:
    llm.status(400, message="This model cannot do that.").ok("Acme Shield stops ransomware [1].")
    job = wait_job(client, token, process(client, token, marketing_text=TEXT, variants=2))
    assert job["status"] == "failed"
    assert "language model" in job["error"] and "400" in job["error"]
    assert job["variants"] == [] and job["claims"], "the ledger of the submitted text stays"
