"""Accounts over the API: register, login, me, tokens and throttling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from pitchcraft.auth.models import User
from pitchcraft.settings import Settings
from pitchcraft.web.app import create_app
from tests.conftest import auth, make_settings, register

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"


def secret_of(client: TestClient) -> str:
    secret: str = client.app.state.container.accounts.tokens.secret  # type: ignore[attr-defined]
    return secret


def test_register_login_me(client: TestClient) -> None:
    token = register(client, "Ada@Example.COM", "test-pass-123")
    me = client.get(ME, headers=auth(token))
    assert me.status_code == 200
    body = me.json()
    assert body["email"] == "ada@example.com"
    assert isinstance(body["id"], int)
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None

    r = client.post(LOGIN, json={"email": "ADA@example.com", "password": "test-pass-123"})
    assert r.status_code == 200
    assert r.json()["token_type"] == "bearer"
    assert client.get(ME, headers=auth(r.json()["access_token"])).json()["id"] == body["id"]


def test_email_unique_case_insensitively(client: TestClient) -> None:
    register(client, "sam@example.com")
    r = client.post(
        "/api/v1/auth/register", json={"email": "SAM@Example.com", "password": "other-pass"}
    )
    assert r.status_code == 409
    assert r.json()["code"] == "email_taken"


def test_password_minimum_is_enforced(client: TestClient) -> None:
    r = client.post(
        "/api/v1/auth/register", json={"email": "short@example.com", "password": "12345"}
    )
    assert r.status_code == 422
    assert r.json()["code"] == "password_too_short"
    assert "8 characters" in r.json()["detail"]


def test_unknown_email_and_wrong_password_look_the_same(client: TestClient) -> None:
    register(client, "known@example.com", "right-password")
    wrong = client.post(LOGIN, json={"email": "known@example.com", "password": "wrong-password"})
    unknown = client.post(LOGIN, json={"email": "nobody@example.com", "password": "wrong-password"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["code"] == "invalid_credentials"


def test_registration_can_be_closed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", registration_open=False)
    with TestClient(create_app(settings)) as c:
        r = c.post(
            "/api/v1/auth/register", json={"email": "x@example.com", "password": "test-pass-123"}
        )
        assert r.status_code == 403
        assert r.json()["code"] == "registration_closed"


class TestTokens:
    def test_missing_token(self, client: TestClient) -> None:
        r = client.get(ME)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["code"] == "not_authenticated"

    @pytest.mark.parametrize("token", ["garbage", "a.b.c", "", "Bearer", "x" * 5000])
    def test_malformed_tokens(self, client: TestClient, token: str) -> None:
        r = client.get(ME, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401
        assert r.json()["code"] in {"invalid_token", "not_authenticated"}

    def test_expired_token(self, client: TestClient) -> None:
        token = register(client)
        claims = jwt.decode(token, options={"verify_signature": False})
        past = datetime.now(UTC) - timedelta(hours=2)
        claims.update(iat=past, exp=past + timedelta(minutes=1))
        expired = jwt.encode(claims, secret_of(client), algorithm="HS256")
        r = client.get(ME, headers=auth(expired))
        assert r.status_code == 401
        assert "expired" in r.json()["detail"]

    def test_forged_signature(self, client: TestClient) -> None:
        token = register(client)
        claims = jwt.decode(token, options={"verify_signature": False})
        forged = jwt.encode(
            claims, "another-secret-that-is-long-enough-0123456789", algorithm="HS256"
        )
        assert client.get(ME, headers=auth(forged)).status_code == 401

    def test_alg_none_is_refused(self, client: TestClient) -> None:
        token = register(client)
        claims = jwt.decode(token, options={"verify_signature": False})
        unsigned = jwt.encode(claims, None, algorithm="none")
        assert client.get(ME, headers=auth(unsigned)).status_code == 401
        # The same claims properly signed do work, so the refusal is about the algorithm.
        assert client.get(ME, headers=auth(token)).status_code == 200

    def test_other_user_id_in_claims_is_refused(self, client: TestClient) -> None:
        token = register(client, "a@example.com")
        register(client, "b@example.com")
        claims = jwt.decode(token, options={"verify_signature": False})
        claims["sub"] = "2"
        forged = jwt.encode(
            claims, "not-the-secret-not-the-secret-not-the-secret", algorithm="HS256"
        )
        assert client.get(ME, headers=auth(forged)).status_code == 401

    def test_token_for_deleted_user(self, client: TestClient) -> None:
        token = register(client, "gone@example.com")
        db = client.app.state.container.db  # type: ignore[attr-defined]
        with db.session() as s:
            s.execute(delete(User).where(User.email == "gone@example.com"))
        assert client.get(ME, headers=auth(token)).status_code == 401

    def test_password_change_revokes_old_tokens(self, client: TestClient) -> None:
        old = register(client, "change@example.com", "first-pass")
        accounts = client.app.state.container.accounts  # type: ignore[attr-defined]
        accounts.set_password(email="change@example.com", password="second-pass")
        assert client.get(ME, headers=auth(old)).status_code == 401
        assert (
            client.post(
                LOGIN, json={"email": "change@example.com", "password": "first-pass"}
            ).status_code
            == 401
        )
        r = client.post(LOGIN, json={"email": "change@example.com", "password": "second-pass"})
        assert client.get(ME, headers=auth(r.json()["access_token"])).status_code == 200

    def test_replicas_share_the_generated_secret(self, settings: Settings) -> None:
        with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
            token = register(one)
            assert secret_of(one) == secret_of(two)
            assert two.get(ME, headers=auth(token)).status_code == 200

    def test_configured_secret_wins(self, settings: Settings) -> None:
        configured = settings.model_copy(update={"jwt_secret": "s" * 40})
        with TestClient(create_app(configured)) as c:
            assert secret_of(c) == "s" * 40


class TestRateLimit:
    def test_per_email_and_client(self, tmp_path: Path) -> None:
        settings = make_settings(tmp_path / "data", login_rate_limit_per_email_client="3/minute")
        with TestClient(create_app(settings)) as c:
            register(c, "target@example.com", "right-pass")
            for _ in range(3):
                assert (
                    c.post(LOGIN, json={"email": "target@example.com", "password": "x"}).status_code
                    == 401
                )
            r = c.post(LOGIN, json={"email": "TARGET@example.com", "password": "right-pass"})
            assert r.status_code == 429
            assert r.json()["code"] == "rate_limited"
            assert 1 <= int(r.headers["retry-after"]) <= 60
            # Another account from the same client is not affected by this pair's budget.
            register(c, "other@example.com", "right-pass")
            assert (
                c.post(
                    LOGIN, json={"email": "other@example.com", "password": "right-pass"}
                ).status_code
                == 200
            )

    def test_per_client(self, tmp_path: Path) -> None:
        settings = make_settings(tmp_path / "data", login_rate_limit_per_client="4/minute")
        with TestClient(create_app(settings)) as c:
            codes = [
                c.post(LOGIN, json={"email": f"u{i}@example.com", "password": "x"}).status_code
                for i in range(6)
            ]
            assert codes[:4] == [401] * 4
            assert codes[4:] == [429, 429]

    def test_registration_per_client(self, tmp_path: Path) -> None:
        settings = make_settings(tmp_path / "data", register_rate_limit_per_client="2/hour")
        with TestClient(create_app(settings)) as c:
            codes = [
                c.post(
                    "/api/v1/auth/register",
                    json={"email": f"n{i}@example.com", "password": "test-pass-123"},
                ).status_code
                for i in range(3)
            ]
            assert codes == [201, 201, 429]

    def test_shared_through_redis(self, tmp_path: Path) -> None:
        redis = pytest.importorskip("redis")
        try:
            redis.Redis(host="127.0.0.1", port=6379).ping()
        except redis.exceptions.ConnectionError:
            pytest.fail("Redis is not reachable on 127.0.0.1:6379 (make test starts it)")
        url = "redis://127.0.0.1:6379/15"
        redis.Redis.from_url(url).flushdb()
        # Both replicas see the same client address, so the pair budget is shared.
        common = {"login_rate_limit_per_email_client": "2/minute", "rate_limit_storage_url": url}
        settings = make_settings(tmp_path / "data", **common)
        with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
            register(one, "shared@example.com", "right-pass")
            assert (
                one.post(LOGIN, json={"email": "shared@example.com", "password": "x"}).status_code
                == 401
            )
            assert (
                two.post(LOGIN, json={"email": "shared@example.com", "password": "x"}).status_code
                == 401
            )
            # The third attempt, on the other replica, sees the first two.
            assert (
                one.post(LOGIN, json={"email": "shared@example.com", "password": "x"}).status_code
                == 429
            )
        redis.Redis.from_url(url).flushdb()
