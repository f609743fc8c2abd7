"""Encrypting a value kept in the database (the saved model's API key) with a key derived
from the server's secret: HKDF-SHA256 over the secret gives a Fernet key (AES-128-CBC and
HMAC-SHA256, from the `cryptography` library)."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class Unreadable(Exception):
    """The value was encrypted under another secret (the server's secret changed) or is
    damaged."""


class SecretBox:
    def __init__(self, server_secret: str, *, purpose: str) -> None:
        # A purpose of its own: the same secret signs tokens and CSRF forms, and a key for
        # one must never be the key for another.
        derived = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=f"pitchcraft:{purpose}".encode(),
        ).derive(server_secret.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def __repr__(self) -> str:
        return "SecretBox(...)"

    def seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except (InvalidToken, UnicodeError, ValueError) as exc:
            raise Unreadable("the value was sealed under another secret") from exc
