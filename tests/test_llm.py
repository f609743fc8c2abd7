"""The OpenAI-compatible chat client against a local server that checks each request
(tests/llm_server.py). build_llm and what /health and doctor say: test_llm_settings.py."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from pitchcraft.core.openai_compat import retry_wait
from pitchcraft.llm import LLMConfigError, LLMError
from pitchcraft.llm.openai import OpenAIChat, chat_completions_url
from tests.conftest import FAKE_LLM_KEY, REPO, free_port
from tests.llm_server import FakeLLM

KEY = FAKE_LLM_KEY
PROMPT = (
    "Rewrite this copy for a cybersecurity audience, citing passages as [n].\n\n"
    "Copy: Our gateway keeps offices safe.\n\n"
    "[1] gateway.pdf, page 3: The gateway inspects encrypted traffic at line rate.\n"
    "[2] brochure.pdf, page 1: Zero-trust access for every branch office.\n"
    "[3] notes.txt: Customers report fewer incidents after rollout.\n"
)
MESSAGES = [
    {"role": "system", "content": "You refine marketing copy."},
    {"role": "user", "content": PROMPT},
]
Make = Callable[..., OpenAIChat]


@pytest.fixture
def make(fake_llm: FakeLLM) -> Iterator[Make]:
    made: list[OpenAIChat] = []

    def build(**overrides: Any) -> OpenAIChat:
        values: dict[str, Any] = {
            "base_url": fake_llm.base_url,
            "api_key": KEY,
            "model": "test-model",
            "temperature": 0.3,
            "max_tokens": 321,
            "timeout": 5.0,
            "max_retries": 2,
            "min_wait": 0.01,
            "max_wait": 2.0,
        }
        values.update(overrides)
        client = OpenAIChat(**values)
        made.append(client)
        return client

    yield build
    for client in made:
        client.close()


def cited(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\[(\d+)\]", text)]


# -- requests and answers ----------------------------------------------------------------


def test_request_shape_and_answer(fake_llm: FakeLLM, make: Make) -> None:
    answer = make().complete(MESSAGES)
    (seen,) = fake_llm.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.status == 200
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.headers["content-type"] == "application/json"
    assert seen.body == {
        "model": "test-model",
        "messages": MESSAGES,
        "temperature": 0.3,
        "max_tokens": 321,
    }
    # The server's answer is computed from the prompt: passages [1] and [2] and one that
    # does not exist.
    assert cited(answer.text) == [1, 2, 99]
    assert "encrypted traffic" in answer.text
    assert answer.model == "test-model"
    assert answer.finish_reason == "stop"
    assert answer.usage is not None and answer.usage["total_tokens"] > 0


def test_no_key_sends_no_authorization_header(make: Make) -> None:
    with FakeLLM() as open_server:  # an endpoint without keys, like a local Ollama
        answer = make(base_url=open_server.base_url, api_key=None).complete(
            [{"role": "user", "content": "Make this sound better: we sell routers."}]
        )
    (seen,) = open_server.requests
    assert "authorization" not in seen.headers
    assert seen.status == 200
    assert cited(answer.text) == [99]  # no passages in the prompt: only the invented one


def test_streamed_deltas_join_to_the_whole_answer(fake_llm: FakeLLM, make: Make) -> None:
    client = make()
    whole = client.complete(MESSAGES).text
    deltas = list(client.stream(MESSAGES))
    assert len(deltas) > 3 and all(deltas)
    assert "".join(deltas) == whole
    plain, streamed = fake_llm.requests
    assert "stream" not in plain.body
    assert streamed.body["stream"] is True
    assert "text/event-stream" in streamed.headers["accept"]
    assert {k: v for k, v in streamed.body.items() if k != "stream"} == plain.body


def test_stream_is_lazy_and_checks_messages_at_once(fake_llm: FakeLLM, make: Make) -> None:
    client = make()
    deltas = client.stream(MESSAGES)
    assert fake_llm.requests == []  # nothing sent until the first delta is asked for
    assert next(deltas)
    with pytest.raises(ValueError, match="non-empty list"):
        client.stream([])
    with pytest.raises(ValueError, match="'content' string"):
        client.complete([{"role": "user"}])


# -- retries -----------------------------------------------------------------------------


def test_timeouts_are_retried_then_fail_with_the_reason(fake_llm: FakeLLM, make: Make) -> None:
    client = make(timeout=0.3, max_retries=2)
    fake_llm.timeout(3).timeout(3).timeout(3)
    with pytest.raises(LLMError) as caught:
        client.complete(MESSAGES)
    assert str(caught.value) == "the language model did not answer within 0.3 s (tried 3 times)"
    assert caught.value.transient
    assert len(fake_llm.requests) == 3
    # One slow answer, then a good one: the caller never notices.
    fake_llm.timeout(3)
    assert cited(client.complete(MESSAGES).text) == [1, 2, 99]
    assert len(fake_llm.requests) == 5


def test_a_server_error_is_retried(fake_llm: FakeLLM, make: Make) -> None:
    fake_llm.status(500).status(502)
    answer = make().complete(MESSAGES)
    assert [r.status for r in fake_llm.requests] == [500, 502, 200]
    assert cited(answer.text) == [1, 2, 99]
    fake_llm.status(503).status(503).status(503, message="overloaded")
    with pytest.raises(LLMError) as caught:
        make(max_retries=2).complete(MESSAGES)
    assert "kept failing (HTTP 503: overloaded; tried 3 times)" in str(caught.value)
    assert caught.value.status == 503


def test_retry_after_is_honoured(fake_llm: FakeLLM, make: Make) -> None:
    fake_llm.status(429, retry_after=1, message="Rate limit reached")
    assert make().complete(MESSAGES).text
    first, second = fake_llm.requests
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 1.0  # the client's own backoff would be 0.01 s


def test_retry_after_as_a_date_is_capped(fake_llm: FakeLLM, make: Make) -> None:
    in_an_hour = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    fake_llm.status(503, retry_after=in_an_hour)
    assert make(max_wait=0.5).complete(MESSAGES).text
    first, second = fake_llm.requests
    assert 0.5 <= second.at - first.at < 5  # the date was read, and the cap applied


def test_retry_after_replaces_the_backoff(fake_llm: FakeLLM, make: Make) -> None:
    # The server's Retry-After is the wait, even when it is shorter than our own backoff.
    fake_llm.status(429, retry_after=0, message="Rate limit reached")
    assert make(min_wait=3.0, max_wait=10.0).complete(MESSAGES).text
    first, second = fake_llm.requests
    assert first.status == 429 and second.status == 200
    assert second.at - first.at < 1.5  # the backoff alone would wait 3 s or more


def test_the_wait_rule() -> None:
    # Shared by the chat and embeddings clients (core.openai_compat).
    assert retry_wait(1, 2.0, min_wait=0.5, max_wait=60) == 2.0  # Retry-After, as given
    assert retry_wait(3, 0.0, min_wait=0.5, max_wait=60) == 0.0  # ... even "now"
    assert retry_wait(1, 3600.0, min_wait=0.5, max_wait=60) == 60  # ... up to max_wait
    for attempt, backoff in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0)]:
        waits = {retry_wait(attempt, None, min_wait=0.5, max_wait=60) for _ in range(50)}
        assert all(backoff <= w <= backoff * 1.5 for w in waits)  # doubling, with jitter
        assert len(waits) > 1
    assert retry_wait(10, None, min_wait=0.5, max_wait=60) == 60
    assert retry_wait(10_000, None, min_wait=0.5, max_wait=60) == 60  # no overflow


def test_rate_limit_that_does_not_pass_names_it(fake_llm: FakeLLM, make: Make) -> None:
    for _ in range(2):
        fake_llm.status(429, retry_after=0, message="Rate limit reached for requests")
    with pytest.raises(LLMError) as caught:
        make(max_retries=1).complete(MESSAGES)
    assert "rate-limiting" in str(caught.value)
    assert "Rate limit reached for requests" in str(caught.value)
    assert "tried 2 times" in str(caught.value)


def test_an_unreachable_endpoint_is_named(make: Make) -> None:
    with pytest.raises(LLMError) as caught:
        make(base_url="http://127.0.0.1:9/v1", max_retries=1).complete(MESSAGES)
    assert str(caught.value) == "could not reach the language model at 127.0.0.1:9 (tried 2 times)"
    assert caught.value.transient


# -- failures that are not retried -------------------------------------------------------


def test_a_refused_key_is_not_retried(fake_llm: FakeLLM, make: Make) -> None:
    with pytest.raises(LLMError) as caught:
        make(api_key="sk-wrong-key-000000").complete(MESSAGES)
    message = str(caught.value)
    assert message.startswith("the language model endpoint refused the API key (401)")
    assert "LLM_API_KEY" in message and "sk-wrong" not in message
    assert caught.value.status == 401 and not caught.value.transient
    assert [r.status for r in fake_llm.requests] == [401]
    with pytest.raises(LLMError, match=r"needs an API key \(401\); set LLM_API_KEY"):
        make(api_key=None).complete(MESSAGES)
    assert len(fake_llm.requests) == 2


def test_other_client_errors_name_the_status_and_the_reason(fake_llm: FakeLLM, make: Make) -> None:
    client = make()
    fake_llm.status(400, message="This model's maximum context length is 4096 tokens. " * 20)
    with pytest.raises(LLMError) as caught:
        client.complete(MESSAGES)
    message = str(caught.value)
    assert message.startswith(
        "the language model endpoint rejected the request (HTTP 400: This model's maximum "
        "context length is 4096 tokens."
    )
    assert len(message) < 320 and message.endswith("…)")  # the endpoint's text, truncated
    assert caught.value.status == 400 and not caught.value.transient
    fake_llm.status(429, message="You exceeded your current quota", error_code="insufficient_quota")
    with pytest.raises(LLMError, match=r"no credit left \(HTTP 429: You exceeded"):
        client.complete(MESSAGES)  # retrying cannot help: not retried
    fake_llm.status(501)
    with pytest.raises(LLMError, match="answered HTTP 501"):
        client.complete(MESSAGES)
    assert [r.status for r in fake_llm.requests] == [400, 429, 501]


def test_an_unknown_model_points_at_the_settings(make: Make) -> None:
    with FakeLLM(api_key=KEY, model="llama3.1") as strict:
        with pytest.raises(LLMError) as caught:
            make(base_url=strict.base_url, model="llama3").complete(MESSAGES)
        assert [r.status for r in strict.requests] == [404]
    message = str(caught.value)
    assert "404 (not found: The model `llama3` does not exist.)" in message
    assert "check LLM_BASE_URL (it usually ends in /v1) and LLM_MODEL" in message


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_malformed_and_empty_answers(fake_llm: FakeLLM, make: Make, stream: bool) -> None:
    client = make()

    def ask() -> str:
        return "".join(client.stream(MESSAGES)) if stream else client.complete(MESSAGES).text

    fake_llm.malformed()
    with pytest.raises(LLMError, match=r"^the language model returned a malformed answer"):
        ask()
    fake_llm.empty_choices()
    with pytest.raises(LLMError, match=r"^the language model returned no answer"):
        ask()
    fake_llm.empty_content()
    with pytest.raises(LLMError, match=r"^the language model returned no answer"):
        ask()
    fake_llm.ok("   ")
    with pytest.raises(LLMError, match=r"^the language model returned no answer"):
        ask()
    assert len(fake_llm.requests) == 4  # none of these is retried
    fake_llm.ok("Short and cited [1].", finish_reason="length")
    assert ask() == "Short and cited [1]."


def test_a_stream_is_retried_only_before_its_first_delta(fake_llm: FakeLLM, make: Make) -> None:
    client = make()
    fake_llm.disconnect().disconnect(after_deltas=0)
    assert cited("".join(client.stream(MESSAGES))) == [1, 2, 99]
    assert len(fake_llm.requests) == 3
    fake_llm.disconnect(after_deltas=3)
    received: list[str] = []
    with pytest.raises(LLMError) as caught:
        for delta in client.stream(MESSAGES):
            received.append(delta)
    assert str(caught.value) == (
        "the connection to the language model was lost part-way through the answer"
    )
    assert caught.value.transient
    assert len(received) == 3 and "".join(received).startswith("Refined: ")
    assert len(fake_llm.requests) == 4  # not sent again: part of the answer was shown
    fake_llm.timeout(3)
    assert "".join(make(timeout=0.3).stream(MESSAGES))  # a slow start is retried
    assert len(fake_llm.requests) == 6


def test_a_stream_that_stalls_part_way_fails_without_retry(fake_llm: FakeLLM, make: Make) -> None:
    fake_llm.ok("one two three four", delay=1.0)
    received: list[str] = []
    with pytest.raises(LLMError, match=r"stopped answering part-way through \(nothing for 0.3 s\)"):
        received.extend(make(timeout=0.3).stream(MESSAGES))
    assert len(fake_llm.requests) == 1


def test_an_endpoint_that_ignores_stream_still_works(make: Make) -> None:
    def whole_answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "model": "m",
                "choices": [{"message": {"role": "assistant", "content": "all at once"}}],
            },
        )

    client = make(base_url="http://llm.invalid/v1", transport=httpx.MockTransport(whole_answer))
    assert list(client.stream(MESSAGES)) == ["all at once"]


# -- settings, URLs, secrets and logs ----------------------------------------------------


def test_url_normalisation(fake_llm: FakeLLM, make: Make) -> None:
    assert chat_completions_url("https://api.openai.com/v1") == (
        "https://api.openai.com/v1/chat/completions"
    )
    assert chat_completions_url("http://ollama:11434") == "http://ollama:11434/v1/chat/completions"
    assert chat_completions_url("http://ollama:11434/") == "http://ollama:11434/v1/chat/completions"
    assert chat_completions_url(" http://vllm:8000/v1/ ") == "http://vllm:8000/v1/chat/completions"
    assert chat_completions_url("http://h/v1/chat/completions") == "http://h/v1/chat/completions"
    assert chat_completions_url("https://h/api/openai") == "https://h/api/openai/chat/completions"
    for bad in ("localhost:11434", "ftp://h/v1", "http://h/v1?key=1", "/v1"):
        with pytest.raises(LLMConfigError, match="LLM_BASE_URL"):
            chat_completions_url(bad)
    # Against the server: a bare host, and a full URL.
    root = fake_llm.base_url.removesuffix("/v1")
    make(base_url=root).complete(MESSAGES)
    make(base_url=f"{root}/v1/chat/completions").complete(MESSAGES)
    assert [r.path for r in fake_llm.requests] == ["/v1/chat/completions"] * 2


def test_the_key_never_shows(
    fake_llm: FakeLLM, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make(max_retries=1)
    assert KEY not in repr(client)
    errors: list[str] = []
    # Endpoints that echo the key in their error messages, retried and not.
    fake_llm.status(502, message=f"upstream rejected {KEY}")
    fake_llm.status(401, message=f"Incorrect API key provided: {KEY}")
    fake_llm.status(403, message=f"key {KEY} may not use this model")
    fake_llm.status(503, message=f"no capacity for {KEY}").status(503, message=f"still {KEY}")
    for _ in range(3):
        with pytest.raises(LLMError) as caught:
            client.complete(MESSAGES)
        errors.append(str(caught.value))
    fake_llm.status(400, message=f"bad request from {KEY}")
    with pytest.raises(LLMError) as caught:
        list(client.stream(MESSAGES))
    errors.append(str(caught.value))
    assert client.complete(MESSAGES).text and "".join(client.stream(MESSAGES))
    assert len(errors) == 4
    assert "may not use this model" in errors[1] and "still ***" in errors[2]
    for text in [*errors, caplog.text]:
        assert KEY not in text
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in fake_llm.requests)


def test_no_prompt_or_answer_text_in_logs(
    fake_llm: FakeLLM, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    marker = "Quokkaplex"
    messages = [
        {
            "role": "user",
            "content": f"Copy: {marker} is fast.\n[1] a.pdf: {marker} routers route.\n"
            f"[2] b.pdf: {marker} firewalls filter.",
        }
    ]
    client = make()
    caplog.set_level(logging.INFO)
    fake_llm.status(500)
    assert marker in client.complete(messages).text  # the answer quotes the passages
    assert marker in "".join(client.stream(messages))
    assert "retrying" in caplog.text  # INFO does say what happened
    assert marker not in caplog.text
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    fake_llm.status(503)
    assert marker in "".join(make(timeout=1.0).stream(messages))
    assert "chars" in caplog.text  # DEBUG: sizes and timings
    assert marker not in caplog.text


# -- the test server itself ----------------------------------------------------------------


def test_fake_llm_checks_each_request(fake_llm: FakeLLM) -> None:
    url = f"{fake_llm.base_url}/chat/completions"
    good = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    bad_bodies = [
        {"messages": good["messages"]},
        {**good, "model": ""},
        {**good, "messages": []},
        {**good, "messages": [{"role": "user"}]},
        {**good, "messages": [{"role": "robot", "content": "hi"}]},
        {**good, "messages": "hi"},
        {**good, "temperature": 5},
        {**good, "max_tokens": 0},
        {**good, "stream": "yes"},
    ]
    bearer = {"Authorization": f"Bearer {KEY}"}
    for body in bad_bodies:
        r = httpx.post(url, json=body, headers=bearer)
        assert r.status_code == 400, body
        assert r.json()["error"]["message"], body
    r = httpx.post(url, json=good)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = httpx.post(url, content=b"{", headers={**bearer, "Content-Type": "application/json"})
    assert r.status_code == 400
    fake_llm.status(500)
    assert fake_llm.pending == 1  # a rejected request does not use up the script
    assert httpx.post(url, json=good, headers=bearer).status_code == 500
    assert httpx.post(url, json=good, headers=bearer).status_code == 200


def test_fake_llm_default_answer_follows_the_prompt(fake_llm: FakeLLM, make: Make) -> None:
    client = make()

    def answer(prompt: str) -> str:
        return client.complete([{"role": "user", "content": prompt}]).text

    assert cited(answer("[3] a.pdf: alpha beta.\n[5] b.pdf: gamma.\n[7] c: delta.")) == [3, 5, 99]
    assert cited(answer("[99] a.pdf: x\n[100] b.pdf: y")) == [99, 100, 101]
    assert cited(answer("no passages at all")) == [99]


@pytest.mark.slow
def test_fake_llm_runs_as_a_process(tmp_path: Path, make: Make) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.llm_server", "--port", str(port), "--api-key", KEY],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().decode().strip() == (
            f"listening on http://127.0.0.1:{port}/v1"
        )
        base = f"http://127.0.0.1:{port}"
        assert httpx.post(f"{base}/_fake/script", json={"kind": "status", "code": 503}).json() == {
            "pending": 1
        }
        client = make(base_url=f"{base}/v1")
        assert cited("".join(client.stream(MESSAGES))) == [1, 2, 99]
        seen = httpx.get(f"{base}/_fake/requests").json()
        assert [r["status"] for r in seen] == [503, 200]
        assert seen[1]["body"]["messages"] == MESSAGES
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
