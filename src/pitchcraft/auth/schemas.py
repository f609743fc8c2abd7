"""Request and response bodies of the accounts API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, EmailStr, Field

from pitchcraft.core.validation import CleanStr, TextStr, encodable

PASSWORD_MAX_LENGTH = 1024


def _encodable_text(value: Any) -> Any:
    return encodable(value) if isinstance(value, str) else value


Email = Annotated[EmailStr, BeforeValidator(_encodable_text)]


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email: Email = Field(max_length=320)
    password: TextStr = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)
    # The original system's sign-up opt-in (news by email); off unless the request says so.
    is_subscribed: bool = False


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # Not validated as an email: a malformed address simply matches no account (401).
    email: CleanStr = Field(min_length=1, max_length=320)
    password: TextStr = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int
    # Documents of the user's ended sessions this sign-in removed (CLEAR_DOCUMENTS_ON_LOGIN).
    cleared_documents: int = 0


class PasswordChangeIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    current_password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)
    new_password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)


class UserOut(BaseModel):
    id: int
    email: str
    is_subscribed: bool = Field(description="The opt-in given at registration.")
    created_at: datetime
    is_admin: bool = False
