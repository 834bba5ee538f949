"""Users: created on first sight from Telegram, kept in step with their Telegram profile.

Every change to a user's row here is announced (`stage_user_changed`) once it commits: each API
process remembers the users of credentials it has validated (`services.auth.AuthCache`), and
forgets them when they change.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import upsert_insert
from core.envelope import Envelope, encode_envelope
from core.errors import NotFound, Unprocessable
from core.outbox import stage
from models import User

BIO_MAX_LENGTH = 500


@dataclass(frozen=True, slots=True)
class TelegramProfile:
    """What Telegram tells us about a user. None means "not known from this source"."""

    telegram_id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_premium: bool | None = None
    photo_url: str | None = None
    allows_write_to_pm: bool | None = None
    is_bot: bool | None = None


USER_CHANGED_SERVICE = "user_changed"


def stage_user_changed(session: AsyncSession, user_ids: Iterable[int]) -> None:
    """Tell every process, once this unit of work commits, that these users' rows changed."""
    body = json.dumps(sorted(set(user_ids))).encode()
    stage(session, encode_envelope([], body, service=USER_CHANGED_SERVICE))


def changed_user_ids(envelope: Envelope) -> list[int]:
    """The users a `stage_user_changed` envelope is about; none for any other envelope."""
    if envelope.service != USER_CHANGED_SERVICE:
        return []
    return [int(user_id) for user_id in json.loads(envelope.frame)]


_SYNCED_FIELDS = tuple(f.name for f in fields(TelegramProfile) if f.name != "telegram_id")
_ALWAYS_SYNCED = frozenset({"first_name", "last_name", "username"})


def _changes(user: User, profile: TelegramProfile, is_admin: bool) -> dict[str, object]:
    changes: dict[str, object] = {}
    for name in _SYNCED_FIELDS:
        value = getattr(profile, name)
        if value is None and name not in _ALWAYS_SYNCED:
            continue
        if getattr(user, name) != value:
            changes[name] = value
    if user.is_admin != is_admin:
        changes["is_admin"] = is_admin
    return changes


@dataclass(frozen=True, slots=True)
class SyncedUser:
    user: User
    is_new: bool
    username_changed: bool
    changed: bool  # created or updated: written in this unit of work, not yet committed


async def sync_telegram_user(
    session: AsyncSession, profile: TelegramProfile, *, admin_ids: frozenset[int]
) -> SyncedUser:
    """The user row for this Telegram user, created on first sight and updated when the profile
    changed; no write at all when nothing changed. Safe under concurrent first requests."""
    is_admin = profile.telegram_id in admin_ids
    user = await session.scalar(select(User).where(User.telegram_id == profile.telegram_id))
    is_new = user is None
    if user is None:
        await _release_username(session, profile)
        values = {name: getattr(profile, name) for name in _SYNCED_FIELDS}
        values = {k: v for k, v in values.items() if v is not None}
        statement = (
            upsert_insert(session, User)
            .values(telegram_id=profile.telegram_id, is_admin=is_admin, **values)
            .on_conflict_do_nothing(index_elements=["telegram_id"])
        )
        await session.execute(statement)
        user = (
            await session.scalars(
                select(User)
                .where(User.telegram_id == profile.telegram_id)
                .execution_options(populate_existing=True)
            )
        ).one()
    changes = _changes(user, profile, is_admin)
    if changes:
        if "username" in changes:
            await _release_username(session, profile)
        for name, value in changes.items():
            setattr(user, name, value)
        await session.flush()
        stage_user_changed(session, [user.id])
    return SyncedUser(
        user,
        is_new=is_new,
        username_changed="username" in changes,
        changed=is_new or bool(changes),
    )


async def _release_username(session: AsyncSession, profile: TelegramProfile) -> None:
    """Telegram usernames move between accounts; the newest holder keeps it here too."""
    if not profile.username:
        return
    holder = await session.scalar(
        select(User).where(
            func.lower(User.username) == profile.username.lower(),
            User.telegram_id != profile.telegram_id,
        )
    )
    if holder is not None:
        holder.username = None
        await session.flush()
        stage_user_changed(session, [holder.id])


async def get_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("User not found", code="user_not_found")
    return user


async def user_by_telegram_id(session: AsyncSession, telegram_id: int) -> User:
    user = await session.scalar(select(User).where(User.telegram_id == telegram_id))
    if user is None:
        raise NotFound(f"No user has Telegram id {telegram_id}", code="user_not_found")
    return user


async def existing_users(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, User]:
    """The users of these ids that exist, by id."""
    users = await session.scalars(select(User).where(User.id.in_(set(user_ids))))
    return {user.id: user for user in users}


async def users_by_id(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, User]:
    """The users of these ids, by id; 404 if any id is no user's."""
    found = await existing_users(session, user_ids)
    missing = sorted(set(user_ids) - found.keys())
    if missing:
        raise NotFound(f"Unknown user ids: {missing}", code="user_not_found")
    return found


def normalize_username(username: str) -> str:
    name = username.strip().lstrip("@").lower()
    if not name or len(name) > 64:
        raise Unprocessable("A username is required", code="username_required")
    return name


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET = _Unset.UNSET


async def list_people(session: AsyncSession, *, limit: int) -> list[User]:
    """People (not bots), the most recently created first."""
    rows = await session.scalars(
        select(User).where(User.is_bot.is_(False)).order_by(User.id.desc()).limit(limit)
    )
    return list(rows)


async def get_user_by_username(session: AsyncSession, username: str) -> User:
    user = await session.scalar(select(User).where(func.lower(User.username) == username.lower()))
    if user is None:
        raise NotFound("User not found", code="user_not_found")
    return user


async def update_profile(
    session: AsyncSession,
    user: User,
    *,
    bio: str | _Unset | None = UNSET,
    notifications_enabled: bool | _Unset = UNSET,
) -> User:
    """Sets what the user chose to change; an empty bio clears it."""
    if bio is not UNSET:
        bio = (bio or "").strip()
        if len(bio) > BIO_MAX_LENGTH:
            raise Unprocessable(
                f"bio is longer than {BIO_MAX_LENGTH} characters", code="bio_too_long"
            )
        user.bio = bio or None
    if notifications_enabled is not UNSET:
        user.notifications_enabled = notifications_enabled
    await session.flush()
    stage_user_changed(session, [user.id])
    return user


async def ensure_bot_user(
    session: AsyncSession, telegram_id: int, name: str, *, username: str | None = None
) -> User:
    """The AI participant's own user row."""
    synced = await sync_telegram_user(
        session,
        TelegramProfile(telegram_id=telegram_id, first_name=name, username=username, is_bot=True),
        admin_ids=frozenset(),
    )
    return synced.user
