"""Authentication: Telegram initData and session tokens, for the API and the WebSocket alike.

Ending a session (logout, logout-all, a reused refresh token, a ban) also ends its open sockets,
on every process: the unit of work stages a revocation that the socket hubs act on once it has
committed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Forbidden, Unauthorized, Unprocessable
from core.outbox import encode_envelope, stage
from core.settings import Settings
from core.telegram_auth import WebAppUser, require_telegram_limits, validate_init_data
from core.tokens import (
    hash_refresh_token,
    issue_access_token,
    new_refresh_token,
    new_session_id,
    read_access_token,
)
from models import AuthSession, RefreshToken, User
from services.chats.invitations import accept_invitations
from services.users import TelegramProfile, sync_telegram_user


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """What checking a credential needs, resolved once per process from the settings."""

    secret_key: str
    bot_token: str | None
    bot_id: int | None
    test_env: bool
    init_data_max_age: int
    admin_telegram_ids: frozenset[int]
    access_token_ttl: timedelta
    refresh_token_ttl: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthConfig:
        return cls(
            secret_key=settings.secret_key_value(),
            bot_token=settings.bot_token_value(),
            bot_id=settings.bot_id,
            test_env=settings.telegram_test_env,
            init_data_max_age=settings.init_data_max_age,
            admin_telegram_ids=settings.admin_telegram_ids,
            access_token_ttl=timedelta(seconds=settings.access_token_ttl),
            refresh_token_ttl=timedelta(seconds=settings.refresh_token_ttl),
        )


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User


@dataclass(frozen=True, slots=True)
class Identity:
    user: User
    session_id: str | None  # None when authenticated by initData
    expires_at: datetime | None = None  # when the access token it was read from expires


REVOCATION_SERVICE = "revocation"


@dataclass(frozen=True, slots=True)
class Revocation:
    """Sockets to close: those of these sessions, and every socket of these users (banned)."""

    session_ids: tuple[str, ...] = ()
    user_ids: tuple[int, ...] = ()

    def envelope(self) -> bytes:
        body = {"sessions": list(self.session_ids), "users": list(self.user_ids)}
        return encode_envelope([], json.dumps(body).encode(), service=REVOCATION_SERVICE)

    @classmethod
    def of_frame(cls, frame: bytes) -> Revocation:
        body = json.loads(frame)
        return cls(tuple(body["sessions"]), tuple(body["users"]))


def _stage_revocation(session: AsyncSession, revocation: Revocation) -> None:
    if revocation.session_ids or revocation.user_ids:
        stage(session, revocation.envelope())


def profile_from_web_app_user(web_user: WebAppUser) -> TelegramProfile:
    return TelegramProfile(
        telegram_id=web_user.id,
        first_name=web_user.first_name,
        last_name=web_user.last_name,
        username=web_user.username,
        language_code=web_user.language_code,
        is_premium=web_user.is_premium,
        photo_url=web_user.photo_url,
        allows_write_to_pm=web_user.allows_write_to_pm,
        is_bot=web_user.is_bot,
    )


async def authenticate_init_data(session: AsyncSession, config: AuthConfig, raw: str) -> User:
    init_data = validate_init_data(
        raw,
        bot_token=config.bot_token,
        bot_id=config.bot_id,
        test_env=config.test_env,
        max_age=config.init_data_max_age,
    )
    if init_data.user is None:
        raise Unauthorized("initData carries no user", code="init_data_malformed")
    require_telegram_limits(init_data.user)
    synced = await sync_telegram_user(
        session,
        profile_from_web_app_user(init_data.user),
        admin_ids=config.admin_telegram_ids,
    )
    if synced.user.banned_at is not None:
        raise Forbidden("This account is banned", code="user_banned")
    if synced.is_new or synced.username_changed:
        await accept_invitations(session, synced.user)
    return synced.user


async def authenticate_access_token(
    session: AsyncSession, config: AuthConfig, token: str
) -> Identity:
    claims = read_access_token(config.secret_key, token)
    user = await session.scalar(
        select(User)
        .join(AuthSession, AuthSession.user_id == User.id)
        .where(
            AuthSession.id == claims.session_id,
            AuthSession.revoked_at.is_(None),
            User.id == claims.user_id,
            User.banned_at.is_(None),
        )
    )
    if user is None:
        raise Unauthorized("Session has been revoked", code="token_revoked")
    return Identity(user=user, session_id=claims.session_id, expires_at=claims.expires_at)


async def still_signed_in(session: AsyncSession, user_id: int, session_id: str | None) -> bool:
    """Whether the session (or, signed in by initData, the user) has not been ended since it was
    authenticated: what a socket checks once it can hear of revocations."""
    statement = select(User.id).where(User.id == user_id, User.banned_at.is_(None))
    if session_id is not None:
        statement = statement.join(AuthSession, AuthSession.user_id == User.id).where(
            AuthSession.id == session_id, AuthSession.revoked_at.is_(None)
        )
    return await session.scalar(statement) is not None


async def _issue(
    session: AsyncSession, config: AuthConfig, user: User, session_id: str, now: datetime
) -> IssuedTokens:
    refresh_token = new_refresh_token()
    session.add(
        RefreshToken(
            token_hash=hash_refresh_token(refresh_token),
            session_id=session_id,
            expires_at=now + config.refresh_token_ttl,
        )
    )
    await session.flush()
    return IssuedTokens(
        access_token=issue_access_token(
            config.secret_key, user.id, session_id, ttl=config.access_token_ttl, now=now
        ),
        refresh_token=refresh_token,
        expires_in=int(config.access_token_ttl.total_seconds()),
        user=user,
    )


async def start_session(session: AsyncSession, config: AuthConfig, user: User) -> IssuedTokens:
    now = datetime.now(UTC)
    auth_session = AuthSession(id=new_session_id(), user_id=user.id, created_at=now)
    session.add(auth_session)
    await session.flush()
    return await _issue(session, config, user, auth_session.id, now)


@dataclass(frozen=True, slots=True)
class RefreshRejected:
    """The refresh failed; what it changed (a revoked family) must still be committed."""

    message: str
    code: str


async def refresh_session(
    session: AsyncSession, config: AuthConfig, refresh_token: str
) -> IssuedTokens | RefreshRejected:
    """Rotate a refresh token. A token that was already rotated is evidence of theft: the whole
    session (every token of its family, and its access tokens) is revoked."""
    now = datetime.now(UTC)
    stored = await session.get(RefreshToken, hash_refresh_token(refresh_token))
    if stored is None:
        return RefreshRejected("Refresh token is invalid", "token_invalid")
    auth_session = await session.get(AuthSession, stored.session_id)
    if auth_session is None or auth_session.revoked_at is not None:
        return RefreshRejected("Session has been revoked", "token_revoked")
    if stored.expires_at <= now:
        return RefreshRejected("Refresh token has expired", "token_expired")
    # Claim the token atomically: of two concurrent refreshes with one token, one wins.
    claimed = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == stored.token_hash, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        await revoke_session(session, auth_session.id)
        return RefreshRejected(
            "Refresh token was already used; the session has been revoked", "token_reused"
        )
    user = await session.get_one(User, auth_session.user_id)
    return await _issue(session, config, user, auth_session.id, now)


async def revoke_session(session: AsyncSession, session_id: str) -> None:
    """End one session: its refresh tokens, its access tokens and its open sockets."""
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    _stage_revocation(session, Revocation(session_ids=(session_id,)))


async def revoke_all_sessions(session: AsyncSession, user_id: int) -> int:
    """End every session of the user (sockets opened with initData are not sessions: initData
    signs them in again, so they stay)."""
    revoked = await _end_sessions(session, user_id)
    _stage_revocation(session, Revocation(session_ids=revoked))
    return len(revoked)


async def _end_sessions(session: AsyncSession, user_id: int) -> tuple[str, ...]:
    revoked = await session.scalars(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .returning(AuthSession.id)
    )
    return tuple(revoked.all())


async def ban_user(session: AsyncSession, user: User) -> None:
    """An operator's ban: every session ends, every socket of the user closes (initData ones
    too), and signing in is refused until `unban_user`."""
    if user.is_bot:
        raise Unprocessable("The AI participant cannot be banned", code="cannot_ban_bot")
    if user.banned_at is None:
        user.banned_at = datetime.now(UTC)
        await session.flush()
    await _end_sessions(session, user.id)
    _stage_revocation(session, Revocation(user_ids=(user.id,)))


async def unban_user(session: AsyncSession, user: User) -> None:
    """Signing in works again; sessions the ban ended stay ended."""
    user.banned_at = None
    await session.flush()
