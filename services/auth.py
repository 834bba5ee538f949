"""Authentication: Telegram initData and session tokens, for the API and the WebSocket alike.

Ending a session (logout, logout-all, a reused refresh token, a ban) also ends its open sockets,
on every process: the unit of work stages a revocation that the socket hubs act on once it has
committed.

A credential seen recently resolves its user without a query (`AuthCache`): its signature or
token is still checked every time; only the user lookup is remembered, by the credential's
hash, for at most `AUTH_CACHE_TTL` seconds, and forgotten in every process when a revocation or
a change of the user's row (`services.users.stage_user_changed`) is published.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy import Select, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from core.envelope import Envelope, encode_envelope
from core.errors import Forbidden, Unauthorized, Unprocessable
from core.outbox import stage
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
from services.users import (
    TelegramProfile,
    changed_user_ids,
    stage_user_changed,
    sync_telegram_user,
)

_Owner = TypeVar("_Owner", int, str)


def credential_key(credential: str) -> bytes:
    """What a credential is remembered by: its SHA-256, never the credential itself."""
    return hashlib.sha256(credential.encode()).digest()


@dataclass(frozen=True, slots=True)
class _Remembered:
    user: User  # a detached copy, never attached to a session
    session_id: str | None
    expires_at: float  # on the cache's clock


class AuthCache:
    """The users of credentials this process validated recently: bounded (the least recently
    used go first), each kept at most `ttl` seconds (0: nothing is kept), and forgotten when a
    revocation or a change of their user is published, by any process (`on_envelope`).

    A lookup that began before an invalidation arrived is not remembered (`generation`): what it
    read may be what the invalidation is about."""

    def __init__(
        self, *, ttl: float, size: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[bytes, _Remembered] = OrderedDict()
        self._by_user: dict[int, set[bytes]] = {}
        self._by_session: dict[str, set[bytes]] = {}
        self.generation = 0

    def get(self, key: bytes) -> _Remembered | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def holds(self, key: bytes) -> bool:
        return self.get(key) is not None

    def remember(self, key: bytes, user: User, session_id: str | None, *, generation: int) -> None:
        """Remember `user` (loaded in a lookup that began at `generation`) for this credential."""
        if self._ttl <= 0 or generation != self.generation:
            return
        self._drop(key)
        self._entries[key] = _Remembered(
            _detached_copy(user), session_id, self._clock() + self._ttl
        )
        self._by_user.setdefault(user.id, set()).add(key)
        if session_id is not None:
            self._by_session.setdefault(session_id, set()).add(key)
        while len(self._entries) > self._size:
            self._drop(next(iter(self._entries)))

    def forget(self, *, user_ids: Iterable[int] = (), session_ids: Iterable[str] = ()) -> None:
        self.generation += 1
        keys: set[bytes] = set()
        for user_id in user_ids:
            keys |= self._by_user.get(user_id, set())
        for session_id in session_ids:
            keys |= self._by_session.get(session_id, set())
        for key in keys:
            self._drop(key)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._by_user.clear()
        self._by_session.clear()

    def on_envelope(self, envelope: Envelope) -> None:
        """A broker listener: forget what a revocation or a user change is about."""
        if envelope.service == REVOCATION_SERVICE:
            revocation = Revocation.of_frame(envelope.frame)
            self.forget(user_ids=revocation.user_ids, session_ids=revocation.session_ids)
        elif changed := changed_user_ids(envelope):
            self.forget(user_ids=changed)

    def _drop(self, key: bytes) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        _discard(self._by_user, entry.user.id, key)
        if entry.session_id is not None:
            _discard(self._by_session, entry.session_id, key)


def _discard(index: dict[_Owner, set[bytes]], owner: _Owner, key: bytes) -> None:
    keys = index.get(owner)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[owner]


def _detached_copy(user: User) -> User:
    """A copy of the loaded user as if loaded by a session since closed: what
    `session.merge(copy, load=False)` puts in a session without a query."""
    copy = User(**{attr.key: getattr(user, attr.key) for attr in inspect(User).column_attrs})
    make_transient_to_detached(copy)
    return copy


async def _recalled(session: AsyncSession, entry: _Remembered) -> User:
    """The remembered user as an instance of this session, with no query: services may change
    it like any user they loaded."""
    return await session.merge(entry.user, load=False)


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
    cache: AuthCache

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
            cache=AuthCache(ttl=settings.auth_cache_ttl, size=settings.auth_cache_size),
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
    credential: bytes  # the credential's key in the AuthCache
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


async def authenticate_init_data(session: AsyncSession, config: AuthConfig, raw: str) -> Identity:
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
    key = credential_key(raw)
    remembered = config.cache.get(key)
    if remembered is not None:
        return Identity(user=await _recalled(session, remembered), session_id=None, credential=key)
    generation = config.cache.generation
    synced = await sync_telegram_user(
        session,
        profile_from_web_app_user(init_data.user),
        admin_ids=config.admin_telegram_ids,
    )
    if synced.user.banned_at is not None:
        raise Forbidden("This account is banned", code="user_banned")
    if synced.is_new or synced.username_changed:
        await accept_invitations(session, synced.user)
    if not synced.changed:  # a row this unit of work changed is not committed yet
        config.cache.remember(key, synced.user, None, generation=generation)
    return Identity(user=synced.user, session_id=None, credential=key)


async def authenticate_access_token(
    session: AsyncSession, config: AuthConfig, token: str
) -> Identity:
    claims = read_access_token(config.secret_key, token)
    key = credential_key(token)
    user = await _user_of(
        session, config, key, claims.user_id, claims.session_id, ended="Session has been revoked"
    )
    return Identity(
        user=user, session_id=claims.session_id, expires_at=claims.expires_at, credential=key
    )


def _signed_in(user_id: int, session_id: str | None) -> Select[User]:
    """The user, if not banned and, signed in with a token, its session has not ended."""
    statement = select(User).where(User.id == user_id, User.banned_at.is_(None))
    if session_id is None:
        return statement
    return statement.join(AuthSession, AuthSession.user_id == User.id).where(
        AuthSession.id == session_id, AuthSession.revoked_at.is_(None)
    )


async def still_signed_in(session: AsyncSession, user_id: int, session_id: str | None) -> bool:
    """Whether the session (or, signed in by initData, the user) has not been ended since it was
    authenticated: what a socket checks once it can hear of revocations."""
    return await session.scalar(_signed_in(user_id, session_id)) is not None


async def signed_in_user(session: AsyncSession, config: AuthConfig, identity: Identity) -> User:
    """The user a socket signed in as, for one of its frames: without a query while its
    credential is remembered; else read again, with what signing in checks, and remembered
    again (its signature or token was checked when the socket opened)."""
    return await _user_of(
        session,
        config,
        identity.credential,
        identity.user.id,
        identity.session_id,
        ended="The socket's session has ended",
    )


async def _user_of(
    session: AsyncSession,
    config: AuthConfig,
    key: bytes,
    user_id: int,
    session_id: str | None,
    *,
    ended: str,
) -> User:
    """The user of a checked credential: remembered, or read with what signing in checks
    (`_signed_in`, refused with `ended`) and remembered."""
    remembered = config.cache.get(key)
    if remembered is not None:
        return await _recalled(session, remembered)
    generation = config.cache.generation
    user = await session.scalar(_signed_in(user_id, session_id))
    if user is None:
        raise Unauthorized(ended, code="token_revoked")
    config.cache.remember(key, user, session_id, generation=generation)
    return user


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
    stage_user_changed(session, [user.id])
