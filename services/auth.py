"""Authentication: Telegram initData and session tokens, for the API and the WebSocket alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Unauthorized
from core.settings import Settings
from core.telegram_auth import WebAppUser, validate_init_data
from core.tokens import (
    hash_refresh_token,
    issue_access_token,
    new_refresh_token,
    new_session_id,
    read_access_token,
)
from models import AuthSession, RefreshToken, User
from services.chats import accept_invitations
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
    synced = await sync_telegram_user(
        session,
        profile_from_web_app_user(init_data.user),
        admin_ids=config.admin_telegram_ids,
    )
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
        )
    )
    if user is None:
        raise Unauthorized("Session has been revoked", code="token_revoked")
    return Identity(user=user, session_id=claims.session_id)


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
    user = await session.get(User, auth_session.user_id)
    assert user is not None
    return await _issue(session, config, user, auth_session.id, now)


async def revoke_session(session: AsyncSession, session_id: str) -> None:
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )


async def revoke_all_sessions(session: AsyncSession, user_id: int) -> int:
    result = await session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
