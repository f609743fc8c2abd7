"""Dense embeddings from any OpenAI-compatible ``/v1/embeddings`` endpoint.

Works with OpenAI, Azure-style proxies that accept a Bearer key, vLLM, Ollama, LM Studio,
text-embeddings-inference, LiteLLM and the like. EMBEDDING_BASE_URL may be given with
or without the version: ``http://host:8080`` and ``http://host:8080/v1`` both post to
``http://host:8080/v1/embeddings``; a URL that already ends in ``/embeddings`` is used as
it is, and any other path gets ``/embeddings`` appended (``https://host/api/openai``).

Rate limits (429), server errors (5xx), timeouts and dropped connections are retried
as `core.openai_compat.retry_wait` says (the server's Retry-After, up to `max_wait`, else
exponential backoff with jitter); anything else fails at once with `EmbeddingError`.
The API key is sent only in the Authorization header and never appears in an error
message or a log line.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from typing import Any

import httpx
from tenacity import Retrying

from pitchcraft.core.openai_compat import (
    Retryable,
    display_url,
    endpoint_url,
    json_headers,
    retry_after,
    retry_policy,
    retryable_status,
    scrub,
)
from pitchcraft.embedding.base import EmbeddingConfigError, EmbeddingError

log = logging.getLogger(__name__)


def embeddings_url(base_url: str) -> str:
    return endpoint_url(
        base_url,
        "embeddings",
        setting="EMBEDDING_BASE_URL",
        example="https://api.openai.com/v1",
        error=EmbeddingConfigError,
    )


class OpenAIEmbedder:
    """Embedder over HTTP. Thread-safe (one httpx.Client with a connection pool)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        model: str,
        dim: int,
        batch_size: int = 64,
        timeout: float = 60.0,
        *,
        max_attempts: int = 6,
        min_wait: float = 0.5,
        max_wait: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not model.strip():
            raise EmbeddingConfigError("EMBEDDING_MODEL must name the endpoint's model")
        if dim < 1:
            raise EmbeddingConfigError("EMBEDDING_DIM must be positive")
        if batch_size < 1:
            raise EmbeddingConfigError("EMBEDDING_BATCH_SIZE must be at least 1")
        self.url = embeddings_url(base_url)
        self.model = model
        self.dim = dim
        self.batch_size = batch_size
        self.name = f"openai:{model}"
        self._max_attempts = max(1, max_attempts)
        self._min_wait = min_wait
        self._max_wait = max_wait
        self.__secret = api_key or ""
        self._client = httpx.Client(
            headers=json_headers(self.__secret),
            timeout=httpx.Timeout(timeout),
            transport=transport,
        )

    def __repr__(self) -> str:  # never shows the key
        return (
            f"OpenAIEmbedder(url={display_url(self.url)!r}, model={self.model!r}, dim={self.dim})"
        )

    def close(self) -> None:
        self._client.close()

    def _scrub(self, text: str) -> str:
        return scrub(text, self.__secret)

    # -- the Embedder port ---------------------------------------------------------------

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            vectors.extend(self._embed_batch(list(texts[start : start + self.batch_size])))
        return vectors

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        # An estimate (about four characters a token in English): the endpoint tokenizes.
        return [max(1, len(t) // 4) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed_batch([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return self.embed_documents(texts)

    # -- HTTP ----------------------------------------------------------------------------

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        # Empty strings are rejected by some servers; a single space embeds as "nothing".
        inputs = [t if t.strip() else " " for t in texts]
        policy = retry_policy(self._max_attempts, min_wait=self._min_wait, max_wait=self._max_wait)
        try:
            return self._attempts(policy, inputs)
        except EmbeddingError as exc:
            raise EmbeddingError(self._scrub(str(exc))) from None

    def _attempts(self, policy: Retrying, inputs: list[str]) -> list[list[float]]:
        try:
            for attempt in policy:
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        log.info(
                            "retrying the embeddings request (attempt %d of %d)",
                            attempt.retry_state.attempt_number,
                            self._max_attempts,
                        )
                    return self._post(inputs)
        except Retryable as exc:
            raise EmbeddingError(
                f"the embeddings endpoint {display_url(self.url)} kept failing after "
                f"{self._max_attempts} attempts: {exc.reason}{exc.detail}"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _post(self, inputs: list[str]) -> list[list[float]]:
        where = display_url(self.url)
        try:
            response = self._client.post(
                self.url, json={"model": self.model, "input": inputs, "encoding_format": "float"}
            )
        except httpx.TimeoutException as exc:
            raise Retryable("timeout", f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise Retryable(
                "connection", f"connection failed ({type(exc).__name__}: {exc})"
            ) from None
        status = response.status_code
        if retryable_status(status):
            raise Retryable(
                "rate_limit" if status == 429 else "server",
                f"HTTP {status}",
                detail=_error_detail(response),
                status=status,
                wait=retry_after(response.headers.get("Retry-After")),
            )
        if status in (401, 403):
            raise EmbeddingError(
                f"the embeddings endpoint {where} refused the credentials (HTTP {status}); "
                "check EMBEDDING_API_KEY"
            )
        if status == 404:
            raise EmbeddingError(
                f"the embeddings endpoint {where} answered 404{_error_detail(response)}; "
                "check EMBEDDING_BASE_URL and EMBEDDING_MODEL"
            )
        if status >= 400:
            raise EmbeddingError(
                f"the embeddings endpoint {where} answered HTTP {status}{_error_detail(response)}"
            )
        try:
            body = response.json()
        except ValueError:
            raise EmbeddingError(
                f"the embeddings endpoint {where} answered HTTP {status} with a body that is "
                f"not JSON: {response.text[:200]!r}"
            ) from None
        return self._parse(body, len(inputs), where)

    def _parse(self, body: Any, expected: int, where: str) -> list[list[float]]:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise EmbeddingError(
                f"the embeddings endpoint {where} answered without a 'data' list; is it "
                "OpenAI-compatible?"
            )
        if len(data) != expected:
            raise EmbeddingError(
                f"the embeddings endpoint {where} returned {len(data)} embeddings for "
                f"{expected} inputs"
            )
        items: list[tuple[int, list[float]]] = []
        for position, item in enumerate(data):
            embedding = item.get("embedding") if isinstance(item, dict) else None
            index = item.get("index", position) if isinstance(item, dict) else position
            if not isinstance(embedding, list) or not isinstance(index, int):
                raise EmbeddingError(
                    f"the embeddings endpoint {where} returned an item without a float list "
                    "'embedding' (base64 encoding is not supported)"
                )
            items.append((index, self._normalise(embedding, where)))
        items.sort(key=lambda pair: pair[0])
        if [index for index, _ in items] != list(range(expected)):
            raise EmbeddingError(
                f"the embeddings endpoint {where} returned indices that do not match the inputs"
            )
        return [vector for _, vector in items]

    def _normalise(self, embedding: list[Any], where: str) -> list[float]:
        if len(embedding) != self.dim:
            raise EmbeddingError(
                f"the embeddings endpoint {where} returned {len(embedding)}-dimensional "
                f"vectors for model {self.model!r}, but EMBEDDING_DIM is {self.dim}"
            )
        try:
            values = [float(x) for x in embedding]
        except (TypeError, ValueError):
            raise EmbeddingError(
                f"the embeddings endpoint {where} returned a non-numeric embedding"
            ) from None
        norm = math.sqrt(math.fsum(v * v for v in values))
        if not math.isfinite(norm) or norm == 0.0:
            raise EmbeddingError(f"the embeddings endpoint {where} returned a zero or NaN vector")
        return [v / norm for v in values]


def _error_detail(response: httpx.Response) -> str:
    """A short, safe excerpt of an error body (OpenAI style {"error": {"message": ...}})."""
    try:
        body = response.json()
    except ValueError:
        text = re.sub(r"\s+", " ", response.text).strip()
        return f": {text[:200]}" if text else ""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return f": {error['message'][:300]}"
        if isinstance(error, str):
            return f": {error[:300]}"
        if isinstance(body.get("detail"), str):
            return f": {body['detail'][:300]}"
    return ""
