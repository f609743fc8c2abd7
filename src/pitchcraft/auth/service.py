"""Accounts: registration, sign-in, sessions, token checks and password changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from pitchcraft.auth.emails import check_email_characters, normalize_email
from pitchcraft.auth.models import PASSWORD_CHANGED, User, UserSession
from pitchcraft.auth.passwords import check_new_password
from pitchcraft.auth.ratelimit import Throttle
from pitchcraft.auth.security import Passwords, Tokens
from pitchcraft.auth.sessions import Opened, SessionStore, SignedIn
from pitchcraft.core.db import Database, utcnow
from pitchcraft.core.errors import Conflict, Forbidden, Invalid, Unauthorized
from pitchcraft.core.validation import has_control_chars

INVALID_CREDENTIALS = "The email or password is incorrect."
WRONG_PASSWORD = "The password is not correct."  # noqa: S105 - a message, not a secret

__all__ = ["INVALID_CREDENTIALS", "Accounts", "normalize_email"]


@dataclass
class Accounts:
    """The accounts service, bound to the adapters it needs."""

    db: Database
    passwords: Passwords
    tokens: Tokens
    throttle: Throttle
    sessions: SessionStore
    password_min_length: int
    registration_open: bool
    # Run after each sign-in has opened its session, with the user's id: clears the
    # documents of the user's ended sessions (CLEAR_DOCUMENTS_ON_LOGIN) and says how many.
    clear_documents: Callable[[int], int] | None = None

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
        return user

    def open_session(self, user: User, *, clear: bool = True) -> Opened:
        """Start a session for a signed-in (or just registered) user. With `clear`, then
        clear the documents of the user's ended sessions; a live session's never go."""
        with self.db.session() as s:
            row, token = self.sessions.open(s, user)
        cleared = 0
        if clear and self.clear_documents is not None:
            cleared = self.clear_documents(user.id)
            if cleared:
                with self.db.session() as s:
                    s.execute(
                        update(UserSession)
                        .where(UserSession.id == row.id)
                        .values(cleared_documents=cleared)
                    )
        return Opened(user=user, session_id=row.id, token=token, cleared_documents=cleared)

    def check_token(self, token: str) -> SignedIn:
        return self.sessions.check(token)

    def user_for_token(self, token: str) -> User:
        return self.sessions.check(token).user

    def sign_out(self, session_id: str) -> None:
        self.sessions.end(session_id)

    def verify_password(self, user_id: int, password: str, *, client: str) -> User:
        """A signed-in user confirming a change with their password (counted like sign-ins)."""
        with self.db.session() as s:
            user = s.get(User, user_id)
        if user is None:
            raise Unauthorized("The access token is no longer valid.", code="invalid_token")
        self.throttle.login(email=user.email, client=client)
        ok, _ = self.passwords.verify_and_update(password, user.password_hash)
        if not ok:
            raise Invalid(WRONG_PASSWORD, code="wrong_password")
        return user

    def change_password(
        self, *, user_id: int, session_id: str, current: str, new: str, client: str
    ) -> None:
        """Change the password of the signed-in user; every other session of theirs ends."""
        email = self.verify_password(user_id, current, client=client).email
        self.check_password_rules(new, email)
        hashed = self.passwords.hash(new)
        with self.db.session() as s:
            user = s.get(User, user_id, with_for_update=True)
            if user is None:
                raise Unauthorized("The access token is no longer valid.", code="invalid_token")
            user.password_hash = hashed
            ended = self.sessions.end_all(s, user_id, reason=PASSWORD_CHANGED, keep=session_id)
        self.sessions.forget(*ended)

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
            self.sessions.end_all(s, user.id, reason=PASSWORD_CHANGED)
        self.sessions.forget_user(user.id)
        return user

    def set_subscribed(self, *, email: str, subscribed: bool) -> User:
        with self.db.session() as s:
            user = s.scalar(select(User).where(User.email == normalize_email(email)))
            if user is None:
                raise Invalid(f"No account with the email {email!r}.", code="unknown_user")
            user.is_subscribed = subscribed
        self.sessions.forget_user(user.id)
        return user

    def list_users(self) -> list[User]:
        with self.db.session() as s:
            return list(s.scalars(select(User).order_by(User.id)))

    def count_users(self) -> int:
        with self.db.session() as s:
            return int(s.scalar(select(func.count(User.id))) or 0)
