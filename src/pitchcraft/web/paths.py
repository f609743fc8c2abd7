"""Which addresses are the JSON API: asked by the error handler, CSRF, CORS and the body limit."""

from __future__ import annotations

API_PREFIX = "/api/v1"
# Read by machines, never shown as a page.
MACHINE_PATHS = frozenset({"/health", "/openapi.json"})
# The two upload forms: their bodies may be as large as the upload limit, not the form limit.
UPLOAD_PATHS = frozenset({f"{API_PREFIX}/documents/upload", "/documents/upload"})


def is_api(path: str) -> bool:
    """The JSON API and the machine endpoints: bearer tokens, JSON errors, no CSRF, CORS."""
    return path.startswith("/api/") or path in MACHINE_PATHS
