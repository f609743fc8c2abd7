"""Password hashing and access tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

BCRYPT_MAX_BYTES = 72
JWT_ALGORITHM = "HS256"
JWT_ISSUER = "pitchcraft"


class LegacyBcryptHasher(BcryptHasher):
    """Verifies bcrypt hashes the way the original system made them.

    Classic bcrypt only ever read the first 72 bytes of a password; bcrypt 5 refuses
    longer input instead, so truncate to keep those users' passwords working.
    """

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        raw = password.encode() if isinstance(password, str) else password
        return super().verify(raw[:BCRYPT_MAX_BYTES], hash)


class Passwords:
    """argon2id for new hashes; bcrypt hashes still verify and are replaced on next login."""

    def __init__(self) -> None:
        self._hash = PasswordHash((Argon2Hasher(), LegacyBcryptHasher()))

    def hash(self, password: str) -> str:
        return self._hash.hash(password)

    def verify_and_update(self, password: str, hashed: str) -> tuple[bool, str | None]:
        try:
            return self._hash.verify_and_update(password, hashed)
        except UnknownHashError:
            return False, None

    def dummy_verify(self, password: str) -> None:
        """Spend the time a real check costs, so unknown emails can't be told apart by timing."""
        self._hash.verify_and_update(password, self._dummy)

    @property
    def _dummy(self) -> str:
        if not hasattr(self, "_dummy_hash"):
            self._dummy_hash = self._hash.hash(uuid.uuid4().hex)
        return self._dummy_hash


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    token_version: int
    expires_at: datetime
    # The sign-in session the token belongs to; "" in tokens from before sessions existed.
    session_id: str = ""


class InvalidToken(Exception):
    pass


class Tokens:
    def __init__(self, secret: str, minutes: int) -> None:
        self._secret = secret
        self._lifetime = timedelta(minutes=minutes)

    @property
    def secret(self) -> str:
        return self._secret

    @property
    def lifetime_seconds(self) -> int:
        return int(self._lifetime.total_seconds())

    def issue(self, user_id: int, token_version: int, session_id: str, now: datetime) -> str:
        claims = {
            "sub": str(user_id),
            "ver": token_version,
            "iat": now,
            "exp": now + self._lifetime,
            "iss": JWT_ISSUER,
            "jti": uuid.uuid4().hex,
            "sid": session_id,
        }
        return jwt.encode(claims, self._secret, algorithm=JWT_ALGORITHM)

    def decode(self, token: str) -> TokenClaims:
        try:
            data = jwt.decode(
                token,
                self._secret,
                algorithms=[JWT_ALGORITHM],
                issuer=JWT_ISSUER,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
            user_id = int(data["sub"])
            version = int(data.get("ver", 0))
            session_id = str(data.get("sid", ""))
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("Your session has expired; please sign in again.") from exc
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise InvalidToken("The access token is not valid.") from exc
        expires = datetime.fromtimestamp(data["exp"], UTC)
        return TokenClaims(user_id, version, expires, session_id)
