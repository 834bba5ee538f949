"""Session token primitives: short-lived JWT access tokens and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from core.errors import Unauthorized

_ALGORITHM = "HS256"
_AUDIENCE = "aimessenger:access"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    session_id: str
    expires_at: datetime


def issue_access_token(
    secret_key: str, user_id: int, session_id: str, *, ttl: timedelta, now: datetime | None = None
) -> str:
    issued = now or datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "sid": session_id,
        "aud": _AUDIENCE,
        "iat": issued,
        "exp": issued + ttl,
    }
    return jwt.encode(claims, secret_key, algorithm=_ALGORITHM)


def read_access_token(secret_key: str, token: str) -> AccessClaims:
    try:
        claims = jwt.decode(
            token,
            secret_key,
            algorithms=[_ALGORITHM],
            audience=_AUDIENCE,
            options={"require": ["sub", "sid", "exp", "iat", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("Access token has expired", code="token_expired") from None
    except jwt.PyJWTError:
        raise Unauthorized("Access token is invalid", code="token_invalid") from None
    try:
        return AccessClaims(
            user_id=int(claims["sub"]),
            session_id=str(claims["sid"]),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
    except (TypeError, ValueError, OverflowError, OSError):
        raise Unauthorized("Access token is invalid", code="token_invalid") from None


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    # Refresh tokens carry 256 bits of randomness, so a plain SHA-256 is the right storage hash.
    return hashlib.sha256(token.encode()).hexdigest()


def new_session_id() -> str:
    return secrets.token_hex(16)
