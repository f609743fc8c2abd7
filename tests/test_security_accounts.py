"""Hardening of accounts (issue 22, items 7, 8, 10, 12): the password policy, sign-in
throttling that cannot lock a user out, email addresses compared after NFKC, and secrets and
transport settings checked at start."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select
from typer.testing import CliRunner

from pitchcraft.auth.models import User
from pitchcraft.auth.passwords import check_new_password
from pitchcraft.auth.security import Passwords
from pitchcraft.core import migrate
from pitchcraft.core.db import Database
from pitchcraft.core.errors import Invalid
from pitchcraft.settings import Settings
from pitchcraft.web.app import create_app
from tests.conftest import PASSWORD, ServerProcess, auth, make_settings, register

REGISTER, LOGIN, ME = "/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/me"
FULL_WIDTH_ALICE = "\uff41\uff4c\uff49\uff43\uff45@example.com"  # alice, full-width letters
CYRILLIC_ALICE = "\u0430lice@example.com"  # a Cyrillic a, then Latin letters
ZERO_WIDTH_ALICE = "al\u200bice@example.com"


# --- 7: passwords per NIST SP 800-63B ----------------------------------------------------


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("      ", "password_too_short"),  # six spaces: accepted before
        ("aaaaaa", "password_too_short"),
        ("        ", "password_too_weak"),  # eight spaces
        ("aaaaaaaa", "password_too_weak"),
        ("password1", "password_too_weak"),
        ("12345678", "password_too_weak"),
        ("qwertyuiop", "password_too_weak"),
        ("Password1!", "password_too_weak"),  # composition does not make it strong
        ("dana.writer@example.com", "password_is_email"),
        ("Dana.Writer", "password_is_email"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(
    client: TestClient, password: str, code: str
) -> None:
    r = client.post(REGISTER, json={"email": "dana.writer@example.com", "password": password})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == code
    assert password.strip() == "" or password not in body["detail"], "never echoed back"
    words = {"password_too_short": "at least 8", "password_too_weak": "easy to guess"}
    assert words.get(code, "email") in body["detail"]
    # Nothing was created: a good password registers the address afterwards.
    register(client, "dana.writer@example.com")


def test_no_composition_rules_and_long_passphrases(client: TestClient) -> None:
    # Only lower-case letters and spaces, and a long one: both fine.
    register(client, "one@example.com", "purple tugboat orchard")
    long = secrets.token_urlsafe(700)
    register(client, "two@example.com", long)
    r = client.post(LOGIN, json={"email": "two@example.com", "password": long})
    assert r.status_code == 200


def test_existing_accounts_with_old_passwords_keep_working(client: TestClient) -> None:
    container = client.app.state.container  # type: ignore[attr-defined]
    with container.db.session() as s:
        s.add(User(email="old@example.com", password_hash=Passwords().hash("test123")))
    r = client.post(LOGIN, json={"email": "old@example.com", "password": "test123"})
    assert r.status_code == 200, r.text


def test_the_policy_is_one_function() -> None:
    with pytest.raises(Invalid) as weak:
        check_new_password("iloveyou", "pat@example.com")
    assert weak.value.code == "password_too_weak" and weak.value.status == 422
    with pytest.raises(Invalid) as own:
        check_new_password("PAT@example.com", "pat@example.com")
    assert own.value.code == "password_is_email"
    with pytest.raises(Invalid) as short:
        check_new_password("abc-12", None)
    assert short.value.code == "password_too_short"
    check_new_password("pat's slow green kettle", "pat@example.com")


def test_cli_and_password_change_follow_the_policy(client: TestClient) -> None:
    accounts = client.app.state.container.accounts  # type: ignore[attr-defined]
    with pytest.raises(Invalid):
        accounts.create_user(email="cli@example.com", password="abcdefgh")
    accounts.create_user(email="cli@example.com", password=PASSWORD)
    with pytest.raises(Invalid) as local:
        accounts.set_password(email="cli@example.com", password="cli")
    assert local.value.code == "password_too_short"
    with pytest.raises(Invalid) as same:
        accounts.set_password(email="cli@example.com", password="CLI@example.com")
    assert same.value.code == "password_is_email"


# --- 8: nobody can lock a chosen user out --------------------------------------------------


def test_a_stranger_cannot_lock_the_user_out(server_env: dict[str, str], start_server: Any) -> None:
    env = {
        **server_env,
        "LOGIN_RATE_LIMIT_PER_EMAIL": "3/minute",
        "LOGIN_RATE_LIMIT_PER_EMAIL_CLIENT": "4/minute",
        "LOGIN_RATE_LIMIT_PER_CLIENT": "1000/minute",
    }
    # Client addresses come from X-Forwarded-For, as behind the compose proxy.
    server: ServerProcess = start_server(env, ["--forwarded-allow-ips", "127.0.0.1"])

    def attempt(http: httpx.Client, client: str, password: str) -> int:
        r = http.post(
            LOGIN,
            json={"email": "victim@example.com", "password": password},
            headers={"X-Forwarded-For": client},
        )
        return r.status_code

    with httpx.Client(base_url=server.url, timeout=60) as http:
        register(http, "victim@example.com", "victim's own passphrase")
        attacker = [attempt(http, "203.0.113.7", f"guess-{i}") for i in range(6)]
        # The attacker's client is refused for this address once its failures are spent...
        assert attacker[:4] == [401] * 4 and attacker[4:] == [429, 429], attacker
        # ... a second attacker client still only gets 401s (slowed down, not refused) ...
        assert attempt(http, "203.0.113.8", "guess-x") == 401
        # ... and the user, from a client of their own, signs in with the right password
        # although the address's failures from everywhere are over budget.
        assert attempt(http, "198.51.100.2", "victim's own passphrase") == 200
        # The attacker's client remains refused, even with the right password.
        assert attempt(http, "203.0.113.7", "victim's own passphrase") == 429
    log = server.log()
    assert "over its failure budget: slowed down" in log
    assert "victim@example.com" not in log


def test_a_correct_sign_in_clears_the_client_s_failures(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", login_rate_limit_per_email_client="3/minute")
    with TestClient(create_app(settings)) as c:
        register(c, "typo@example.com")
        for _ in range(2):
            r = c.post(LOGIN, json={"email": "typo@example.com", "password": "typo"})
            assert r.status_code == 401
        assert c.post(LOGIN, json={"email": "typo@example.com", "password": PASSWORD}).status_code
        for _ in range(2):  # two more typos: the earlier two no longer count
            r = c.post(LOGIN, json={"email": "typo@example.com", "password": "typo"})
            assert r.status_code == 401
        r = c.post(LOGIN, json={"email": "typo@example.com", "password": PASSWORD})
        assert r.status_code == 200


# --- 10: email addresses compared after NFKC ------------------------------------------------


def test_full_width_spelling_is_the_same_account(client: TestClient) -> None:
    token = register(client, "alice@example.com")
    r = client.post(REGISTER, json={"email": FULL_WIDTH_ALICE, "password": PASSWORD})
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "email_taken"
    r = client.post(LOGIN, json={"email": FULL_WIDTH_ALICE, "password": PASSWORD})
    assert r.status_code == 200, r.text
    me = client.get(ME, headers=auth(r.json()["access_token"])).json()
    assert me == client.get(ME, headers=auth(token)).json()
    # A full-width address registers as its normal form.
    r = client.post(
        REGISTER, json={"email": "\uff42\uff4f\uff42@example.com", "password": PASSWORD}
    )
    assert r.status_code == 201, r.text
    assert client.get(ME, headers=auth(r.json()["access_token"])).json()["email"] == (
        "bob@example.com"
    )


@pytest.mark.parametrize("address", [CYRILLIC_ALICE, ZERO_WIDTH_ALICE])
def test_confusable_and_invisible_addresses_are_refused(client: TestClient, address: str) -> None:
    register(client, "alice@example.com")
    r = client.post(REGISTER, json={"email": address, "password": PASSWORD})
    assert r.status_code == 422, r.text
    # Whatever the step that refuses it, no look-alike account exists.
    accounts = client.app.state.container.accounts  # type: ignore[attr-defined]
    assert [u.email for u in accounts.list_users()] == ["alice@example.com"]
    with pytest.raises(Invalid) as refused:
        accounts.create_user(email=address, password=PASSWORD)  # as the CLI does
    assert refused.value.code in {"email_confusable_characters", "email_invisible_characters"}


def test_an_international_address_still_registers(client: TestClient) -> None:
    register(client, "jürgen@exämple.de")
    r = client.post(LOGIN, json={"email": "JÜRGEN@EXÄMPLE.DE", "password": PASSWORD})
    assert r.status_code == 200


def test_migration_normalises_stored_addresses(settings: Settings) -> None:
    db = Database(settings)
    cfg = migrate.alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        # The revision just before the one that normalises addresses.
        before = ScriptDirectory.from_config(cfg).get_revision("0007").down_revision
        command.upgrade(cfg, str(before))
    hashed = Passwords().hash(PASSWORD)
    with db.session() as s:
        s.add(User(email=FULL_WIDTH_ALICE, password_hash=hashed))
        # Two spellings of one address: the second cannot take the normal form.
        s.add(User(email="carol@example.com", password_hash=hashed))
        s.add(User(email="\uff43arol@example.com", password_hash=hashed))
    migrate.upgrade(db)
    with db.session() as s:
        emails = sorted(s.scalars(select(User.email)))
    db.dispose()
    assert emails == sorted(["alice@example.com", "carol@example.com", "\uff43arol@example.com"])
    with TestClient(create_app(settings)) as c:
        r = c.post(LOGIN, json={"email": "alice@example.com", "password": PASSWORD})
        assert r.status_code == 200, r.text


# --- 12: guessable JWT_SECRET, HSTS, the public-interface warning ---------------------------


@pytest.mark.parametrize(
    "secret",
    ["a" * 40, "password" * 5, "0123456789" * 4, "jwt-" + "0123456789abcdef" * 3],
)
def test_a_guessable_jwt_secret_is_refused(secret: str) -> None:
    with pytest.raises(ValidationError, match="easy to guess"):
        Settings(_env_file=None, jwt_secret=secret)  # type: ignore[call-arg]


def test_a_random_jwt_secret_is_accepted() -> None:
    secret = secrets.token_urlsafe(32)
    assert Settings(_env_file=None, jwt_secret=secret).jwt_secret == secret  # type: ignore[call-arg]


def test_serve_refuses_to_start_with_a_guessable_secret(tmp_path: Path) -> None:
    server = ServerProcess(
        {"DATA_DIR": str(tmp_path / "data"), "CONTAINER_MODE": "no", "JWT_SECRET": "z" * 48},
        tmp_path / "server.log",
    )
    with pytest.raises(RuntimeError, match="exited"):
        server.start(timeout=60)
    assert "JWT_SECRET is easy to guess" in server.log()


def test_hsts_only_when_cookies_are_secure(tmp_path: Path) -> None:
    for secure in (True, False):
        settings = make_settings(tmp_path / f"data-{secure}", cookie_secure=secure)
        with TestClient(create_app(settings)) as c:
            for path in ("/health", "/login", "/api/v1/auth/me"):
                hsts = c.get(path).headers.get("strict-transport-security")
                assert (hsts is not None) == secure, (secure, path, hsts)
                if secure:
                    assert hsts is not None and "max-age=31536000" in hsts


def test_serve_warns_on_a_public_interface_without_secure_cookies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import uvicorn

    from pitchcraft import cli

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CONTAINER_MODE", "no")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    everywhere = "0.0.0.0"  # noqa: S104 - never bound: uvicorn.run is replaced above
    warned = []
    for host, secure in [(everywhere, "false"), ("127.0.0.1", "false"), (everywhere, "true")]:
        monkeypatch.setenv("COOKIE_SECURE", secure)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="pitchcraft"):
            result = CliRunner().invoke(cli.app, ["serve", "--host", host, "--port", "9"])
        assert result.exit_code == 0, result.output
        warned.append(any("COOKIE_SECURE=false" in r.getMessage() for r in caplog.records))
    assert warned == [True, False, False]
    assert [c["host"] for c in calls] == [everywhere, "127.0.0.1", everywhere]
    assert cli.listens_publicly("::") and cli.listens_publicly("192.168.1.5")
    assert not cli.listens_publicly("::1") and not cli.listens_publicly("localhost")
