"""The original system's own test, as a real process restart, on SQLite and PostgreSQL."""

from __future__ import annotations

import signal
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import ServerProcess

pytestmark = pytest.mark.slow

EMAIL, PASSWORD = "test@example.com", "test-pass-123"


@pytest.mark.parametrize(
    "stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"]
)
def test_account_and_token_survive_restart(
    server_env: dict[str, str],
    start_server: Callable[[dict[str, str]], ServerProcess],
    stop_signal: int,
) -> None:
    first = start_server(server_env)
    r = httpx.post(f"{first.url}/api/v1/auth/register", json={"email": EMAIL, "password": PASSWORD})
    assert r.status_code == 201, r.text
    token = r.json()["access_token"]
    code = first.stop(stop_signal)
    if stop_signal == signal.SIGTERM:
        # uvicorn shuts down gracefully, then re-raises the signal for the exit status.
        assert code in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in first.log()
    else:
        assert code == -signal.SIGKILL

    second = start_server(server_env)
    r = httpx.post(f"{second.url}/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "bearer"

    # The token from before the restart still works: the generated secret was kept.
    me = httpx.get(f"{second.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    assert me.json()["email"] == EMAIL

    # And registering again is refused: the account really is still there.
    again = httpx.post(
        f"{second.url}/api/v1/auth/register", json={"email": EMAIL, "password": PASSWORD}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "email_taken"
