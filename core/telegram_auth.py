"""Telegram Mini App initData: validation (first- and third-party) and a signer for development.

Error messages name only the kind of failure: the raw initData is a bearer credential and is
never logged nor echoed back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.errors import Unauthorized

MAX_INIT_DATA_BYTES = 8192
FUTURE_SKEW_SECONDS = 60
TELEGRAM_PUBLIC_KEY = "e7bf03a2fa4602af4580703d88dda5bb59f32ed8b02a56c187fe7d34caed242d"
TELEGRAM_TEST_PUBLIC_KEY = "40055058a4ee38156a06562e52eece92a771bcd8346a8c4615cb7376eddf72ec"

_BAD_PERCENT_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_DECIMAL = re.compile(r"[0-9]+")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_ED25519_SIGNATURE_BYTES = 64
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Telegram's own limits for a user's profile. Lengths are counted in code points, never more
# than Telegram's UTF-16 units, so a real profile always fits. A username is at most 32 of
# [A-Za-z0-9_]; its minimum (5, or 4 for collectible ones) is not checked: a shorter one cannot
# come signed from Telegram, and refusing it would guard nothing.
NAME_MAX_LENGTH = 64
USERNAME_MAX_LENGTH = 32
USERNAME = re.compile(r"[A-Za-z0-9_]+")
LANGUAGE_CODE = re.compile(r"[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8}){0,3}")
LANGUAGE_CODE_MAX_LENGTH = 16
PHOTO_URL_MAX_LENGTH = 1024


class InitDataError(Unauthorized):
    """initData was refused; `code` says why (missing, malformed, bad signature, expired)."""


@dataclass(frozen=True, slots=True)
class WebAppUser:
    id: int
    first_name: str
    last_name: str | None
    username: str | None
    language_code: str | None
    is_premium: bool
    allows_write_to_pm: bool
    photo_url: str | None
    is_bot: bool
    added_to_attachment_menu: bool


@dataclass(frozen=True, slots=True)
class WebAppChat:
    id: int
    type: str
    title: str
    username: str | None
    photo_url: str | None


@dataclass(frozen=True, slots=True)
class InitData:
    auth_date: datetime
    hash: str
    signature: str | None
    query_id: str | None
    user: WebAppUser | None
    receiver: WebAppUser | None
    chat: WebAppChat | None
    chat_type: str | None
    chat_instance: str | None
    start_param: str | None
    can_send_after: int | None


def _missing() -> InitDataError:
    return InitDataError("initData is missing", code="init_data_missing")


def _malformed() -> InitDataError:
    return InitDataError("initData is malformed", code="init_data_malformed")


def _bad_signature() -> InitDataError:
    return InitDataError("initData signature is invalid", code="init_data_bad_signature")


def _expired() -> InitDataError:
    return InitDataError("initData has expired", code="init_data_expired")


def _data_check_string(pairs: Iterable[tuple[str, str]]) -> str:
    return "\n".join(f"{key}={value}" for key, value in sorted(pairs))


def _hmac_hash(data_check_string: str, bot_token: str) -> str:
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    return hmac.new(secret, data_check_string.encode(), hashlib.sha256).hexdigest()


def _parse(raw: str) -> dict[str, str]:
    if not raw.strip():
        raise _missing()
    try:
        size = len(raw.encode())
    except UnicodeEncodeError:  # lone surrogates: not text Telegram could have sent
        raise _malformed() from None
    if size > MAX_INIT_DATA_BYTES:
        raise _malformed()
    # unquote() passes invalid escapes such as "%zz" through unchanged; refuse them instead.
    if _BAD_PERCENT_ESCAPE.search(raw):
        raise _malformed()
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=True, errors="strict")
    except ValueError:  # also UnicodeDecodeError; `from None` keeps the data out of tracebacks
        raise _malformed() from None
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise _malformed()
    if "hash" not in fields:
        raise _malformed()
    return fields


def _check_first_party(fields: Mapping[str, str], bot_token: str) -> None:
    expected = _hmac_hash(
        _data_check_string((k, v) for k, v in fields.items() if k != "hash"), bot_token
    )
    # Bytes on both sides: compare_digest refuses non-ASCII str, and the hash is untrusted.
    if not hmac.compare_digest(expected.encode(), fields["hash"].encode()):
        raise _bad_signature()


def _check_third_party(fields: Mapping[str, str], bot_id: int, *, test_env: bool) -> None:
    encoded = fields.get("signature")
    if encoded is None or not _BASE64URL.fullmatch(encoded):
        raise _bad_signature()
    signature = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    if len(signature) != _ED25519_SIGNATURE_BYTES:
        raise _bad_signature()
    lines = _data_check_string((k, v) for k, v in fields.items() if k not in {"hash", "signature"})
    message = f"{bot_id}:WebAppData\n{lines}".encode()
    key = TELEGRAM_TEST_PUBLIC_KEY if test_env else TELEGRAM_PUBLIC_KEY
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key)).verify(signature, message)
    except InvalidSignature:
        raise _bad_signature() from None


def _check_freshness(fields: Mapping[str, str], *, max_age: int, now: float) -> datetime:
    raw_auth_date = fields.get("auth_date")
    if raw_auth_date is None or not _DECIMAL.fullmatch(raw_auth_date):
        raise _malformed()
    auth_date = int(raw_auth_date)
    if now - auth_date > max_age or auth_date - now > FUTURE_SKEW_SECONDS:
        raise _expired()
    return datetime.fromtimestamp(auth_date, tz=UTC)


def _json_object(value: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        raise _malformed() from None
    if not isinstance(parsed, dict):
        raise _malformed()
    return parsed


def _int64(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    # Signed data from some clients (and aiogram's published vector) spells ids as strings.
    if isinstance(value, str) and _DECIMAL.fullmatch(value.removeprefix("-")):
        value = int(value)
    # bool is an int subclass: `true` is not an id.
    if not isinstance(value, int) or isinstance(value, bool):
        raise _malformed()
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise _malformed()
    return value


def _required_str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise _malformed()
    return value


def _optional_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise _malformed()
    return value


def _flag(obj: Mapping[str, Any], key: str) -> bool:
    value = obj.get(key, False)
    if value in ("true", "false"):
        return bool(value == "true")
    if not isinstance(value, bool):
        raise _malformed()
    return value


def _parse_user(value: str) -> WebAppUser:
    obj = _json_object(value)
    return WebAppUser(
        id=_int64(obj, "id"),
        first_name=_required_str(obj, "first_name"),
        last_name=_optional_str(obj, "last_name"),
        username=_optional_str(obj, "username"),
        language_code=_optional_str(obj, "language_code"),
        is_premium=_flag(obj, "is_premium"),
        allows_write_to_pm=_flag(obj, "allows_write_to_pm"),
        photo_url=_optional_str(obj, "photo_url"),
        is_bot=_flag(obj, "is_bot"),
        added_to_attachment_menu=_flag(obj, "added_to_attachment_menu"),
    )


def _within(value: str | None, max_length: int, pattern: re.Pattern[str] | None = None) -> bool:
    if value is None:
        return True
    if len(value) > max_length or "\x00" in value:  # no column stores NUL
        return False
    return pattern is None or pattern.fullmatch(value) is not None


def require_telegram_limits(user: WebAppUser) -> None:
    """A user that becomes an identity here is one Telegram could have sent: a positive id, and
    names, username, language and photo within Telegram's limits (init_data_malformed if not)."""
    if not (
        user.id >= 1
        and _within(user.first_name, NAME_MAX_LENGTH)
        and _within(user.last_name, NAME_MAX_LENGTH)
        and _within(user.username, USERNAME_MAX_LENGTH, USERNAME)
        and _within(user.language_code, LANGUAGE_CODE_MAX_LENGTH, LANGUAGE_CODE)
        and _within(user.photo_url, PHOTO_URL_MAX_LENGTH)
    ):
        raise _malformed()


def _parse_chat(value: str) -> WebAppChat:
    obj = _json_object(value)
    return WebAppChat(
        id=_int64(obj, "id"),
        type=_required_str(obj, "type"),
        title=_required_str(obj, "title"),
        username=_optional_str(obj, "username"),
        photo_url=_optional_str(obj, "photo_url"),
    )


def _parse_can_send_after(value: str) -> int:
    if not _DECIMAL.fullmatch(value):
        raise _malformed()
    return int(value)


def validate_init_data(
    raw: str,
    *,
    bot_token: str | None,
    bot_id: int | None = None,
    test_env: bool = False,
    max_age: int = 86400,
    now: float | None = None,
) -> InitData:
    """Check initData as sent by Telegram.WebApp.initData and return its fields.

    With `bot_token` the HMAC `hash` is checked; without it, the Ed25519 `signature` Telegram
    makes for `bot_id`. Raises InitDataError with a code saying what was wrong.
    """
    fields = _parse(raw)
    if bot_token:
        _check_first_party(fields, bot_token)
    elif bot_id is not None:
        _check_third_party(fields, bot_id, test_env=test_env)
    else:
        raise RuntimeError("validate_init_data needs bot_token or bot_id")
    auth_date = _check_freshness(fields, max_age=max_age, now=time.time() if now is None else now)

    user = fields.get("user")
    receiver = fields.get("receiver")
    chat = fields.get("chat")
    can_send_after = fields.get("can_send_after")
    return InitData(
        auth_date=auth_date,
        hash=fields["hash"],
        signature=fields.get("signature"),
        query_id=fields.get("query_id"),
        user=None if user is None else _parse_user(user),
        receiver=None if receiver is None else _parse_user(receiver),
        chat=None if chat is None else _parse_chat(chat),
        chat_type=fields.get("chat_type"),
        chat_instance=fields.get("chat_instance"),
        start_param=fields.get("start_param"),
        can_send_after=None if can_send_after is None else _parse_can_send_after(can_send_after),
    )


def sign_init_data(fields: Mapping[str, str], bot_token: str) -> str:
    """initData for `fields` signed with `bot_token`, as a Mini App would receive it."""
    if "hash" in fields:
        raise ValueError("fields must not contain 'hash': it is computed here")
    digest = _hmac_hash(_data_check_string(fields.items()), bot_token)
    return urlencode([*fields.items(), ("hash", digest)])


def make_user_field(
    telegram_id: int,
    first_name: str,
    *,
    username: str | None = None,
    last_name: str | None = None,
    language_code: str | None = "en",
    is_premium: bool = False,
    allows_write_to_pm: bool = True,
    photo_url: str | None = None,
) -> str:
    """The `user` field's JSON in Telegram's shape: absent values and false flags are omitted."""
    user: dict[str, object] = {"id": telegram_id, "first_name": first_name}
    optional: dict[str, object] = {
        "last_name": last_name,
        "username": username,
        "language_code": language_code,
        "is_premium": is_premium or None,
        "allows_write_to_pm": allows_write_to_pm or None,
        "photo_url": photo_url,
    }
    user.update({key: value for key, value in optional.items() if value is not None})
    return json.dumps(user, ensure_ascii=False, separators=(",", ":"))
