"""Accounts: registration, sign-in, token checks and password changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from pitchcraft.auth.emails import check_email_characters, normalize_email
from pitchcraft.auth.models import User
from pitchcraft.auth.passwords import check_new_password
from pitchcraft.auth.ratelimit import Throttle
from pitchcraft.auth.security import InvalidToken, Passwords, Tokens
from pitchcraft.core.db import Database, utcnow
from pitchcraft.core.errors import Conflict, Forbidden, Invalid, Unauthorized
from pitchcraft.core.validation import has_control_chars

INVALID_CREDENTIALS = "The email or password is incorrect."

__all__ = ["INVALID_CREDENTIALS", "Accounts", "normalize_email"]


@dataclass
class Accounts:
    """The accounts service, bound to the adapters it needs."""

    db: Database
    passwords: Passwords
    tokens: Tokens
    throttle: Throttle
    password_min_length: int
    registration_open: bool
    # Run after each successful sign-in with the user's id (e.g. clearing documents).
    on_login: list[Callable[[int], object]] = field(default_factory=list)

    def check_password_rules(self, password: str, email: str | None = None) -> None:
        check_new_password(password, email, min_length=self.password_min_length)

    def register(
        self, *, email: str, password: str, client: str, is_subscribed: bool = False
    ) -> User:
        if not self.registration_open:
            raise Forbidden(
                "Registration is closed on this server; ask an administrator for an account.",
                code="registration_closed",
            )
        self.throttle.register(client=client)
        return self.create_user(email=email, password=password, is_subscribed=is_subscribed)

    def create_user(self, *, email: str, password: str, is_subscribed: bool = False) -> User:
        email = normalize_email(email)
        check_email_characters(email)
        self.check_password_rules(password, email)
        hashed = self.passwords.hash(password)
        taken = Conflict("An account with this email already exists.", code="email_taken")
        try:
            with self.db.session() as s:
                if s.scalar(select(User.id).where(User.email == email)) is not None:
                    raise taken
                # The first account of an install administers it.
                first = s.scalar(select(User.id).limit(1)) is None
                user = User(
                    email=email,
                    password_hash=hashed,
                    is_subscribed=is_subscribed,
                    is_admin=first,
                )
                s.add(user)
                s.flush()
        except IntegrityError as exc:  # a concurrent registration won the race
            raise taken from exc
        return user

    def authenticate(self, *, email: str, password: str, client: str) -> User:
        email = normalize_email(email)
        self.throttle.login(email=email, client=client)
        if has_control_chars(email):  # no stored address has them; PostgreSQL rejects NUL
            self.passwords.dummy_verify(password)
            self.throttle.login_failed(email=email, client=client)
            raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials")
        with self.db.session() as s:
            user = s.scalar(select(User).where(User.email == email))
        if user is None:
            self.passwords.dummy_verify(password)
            self.throttle.login_failed(email=email, client=client)
            raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials")
        ok, new_hash = self.passwords.verify_and_update(password, user.password_hash)
        if not ok or not user.is_active:
            self.throttle.login_failed(email=email, client=client)
            raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials")
        self.throttle.login_succeeded(email=email, client=client)
        with self.db.session() as s:
            fresh = s.get(User, user.id)
            if fresh is None:
                raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials")
            if new_hash is not None:
                fresh.password_hash = new_hash
            fresh.last_login_at = utcnow()
            user = fresh
        for hook in self.on_login:
            hook(user.id)
        return user

    def issue_token(self, user: User) -> str:
        return self.tokens.issue(user.id, user.token_version)

    def user_for_token(self, token: str) -> User:
        try:
            claims = self.tokens.decode(token)
        except InvalidToken as exc:
            raise Unauthorized(str(exc), code="invalid_token") from exc
        with self.db.session() as s:
            user = s.get(User, claims.user_id)
        if user is None or not user.is_active or user.token_version != claims.token_version:
            raise Unauthorized("The access token is no longer valid.", code="invalid_token")
        return user

    def set_password(self, *, email: str, password: str) -> User:
        """Change a password and revoke every token issued before."""
        email = normalize_email(email)
        self.check_password_rules(password, email)
        hashed = self.passwords.hash(password)
        with self.db.session() as s:
            user = s.scalar(select(User).where(User.email == email))
            if user is None:
                raise Invalid(f"No account with the email {email!r}.", code="unknown_user")
            user.password_hash = hashed
            user.token_version += 1
        return user

    def list_users(self) -> list[User]:
        with self.db.session() as s:
            return list(s.scalars(select(User).order_by(User.id)))

    def count_users(self) -> int:
        with self.db.session() as s:
            return int(s.scalar(select(func.count(User.id))) or 0)
