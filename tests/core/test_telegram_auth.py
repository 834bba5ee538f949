from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlencode

import pytest

from core.errors import Unauthorized
from core.telegram_auth import (
    FUTURE_SKEW_SECONDS,
    MAX_INIT_DATA_BYTES,
    InitDataError,
    WebAppChat,
    WebAppUser,
    make_user_field,
    sign_init_data,
    validate_init_data,
)

TOKEN = "7000000001:AAF-test-token-for-the-initdata-suite"
NOW = 1_700_000_000

# --- Published vectors -------------------------------------------------------------------------
# aiogram/aiogram, tests/test_utils/test_web_app.py
AIOGRAM_TOKEN = "42:TEST"
AIOGRAM_AUTH_DATE = 1650385342
AIOGRAM_VALID = (
    "auth_date=1650385342"
    "&user=%7B%22id%22%3A42%2C%22first_name%22%3A%22Test%22%7D"
    "&query_id=test"
    "&hash=46d2ea5e32911ec8d30999b56247654460c0d20949b6277af519e76271182803"
)
# Its `user` is spelled with `+` for spaces, with the id and flags as strings.
AIOGRAM_PLUS_AS_SPACE = (
    "auth_date=1650385342"
    "&user=%7B%22id%22%3A+%22123456789%22%2C+%22first_name%22%3A+%22PlaceholderFirstName%22%2C+"
    "%22last_name%22%3A+%22PlaceholderLastName+%5Cud83c%5Cuddfa%5Cud83c%5Cudde6%22%2C+"
    "%22username%22%3A+%22Latand%22%2C+%22language_code%22%3A+%22en%22%2C+"
    "%22is_premium%22%3A+%22true%22%2C+%22allows_write_to_pm%22%3A+%22true%22%7D"
    "&query_id=test"
    "&hash=b3c8b293f14ad0f7f0abcf769aea1209a72295d30a87eb0e74df855d32e53bfe"
)

# Telegram-Mini-Apps/init-data-golang, validate_test.go / sign_test.go (first-party)
GOLANG_TOKEN = "5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8"
GOLANG_AUTH_DATE = 1662771648
GOLANG_HASH = "c501b71e775f74ce10e377dea85a7ea24ecd640b223ea86dfe453e0eaed2e2b2"
GOLANG_INIT_DATA = (
    "query_id=AAHdF6IQAAAAAN0XohDhrOrc"
    "&user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%22%2C%22last_name%22%3A"
    "%22Kibenko%22%2C%22username%22%3A%22vdkfrost%22%2C%22language_code%22%3A%22ru%22%2C"
    "%22is_premium%22%3Atrue%7D"
    f"&auth_date=1662771648&hash={GOLANG_HASH}"
)

# Telegram-Mini-Apps/init-data-golang, validate_third_party_test.go: real data from Telegram with
# both `hash` and the Ed25519 `signature` (production key). The bot's token is not published.
THIRD_PARTY_BOT_ID = 7342037359
THIRD_PARTY_AUTH_DATE = 1733584787
THIRD_PARTY_INIT_DATA = (
    "user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%20%2B%20-%20%3F%20%5C%2F%22"
    "%2C%22last_name%22%3A%22Kibenko%22%2C%22username%22%3A%22vdkfrost%22%2C%22language_code%22"
    "%3A%22ru%22%2C%22is_premium%22%3Atrue%2C%22allows_write_to_pm%22%3Atrue%2C%22photo_url%22"
    "%3A%22https%3A%5C%2F%5C%2Ft.me%5C%2Fi%5C%2Fuserpic%5C%2F320%5C%2F4FPEE4tmP3ATHa57u6MqTDih13L"
    "TOiMoKoLDRG4PnSA.svg%22%7D&chat_instance=8134722200314281151&chat_type=private"
    "&auth_date=1733584787&hash=2174df5b000556d044f3f020384e879c8efcab55ddea2ced4eb752e93e7080d6"
    "&signature=zL-ucjNyREiHDE8aihFwpfR9aggP2xiAo3NSpfe-p7IbCisNlDKlo7Kb6G4D0Ao2mBrSgEk4maLSdv6ML"
    "IlADQ"
)

# Telegram-Mini-Apps/telegram-apps, packages/init-data-node/src/validate.test.ts: every field
# (chat, receiver, can_send_after, ...), signed with GOLANG_TOKEN at auth_date=1.
TMA_INIT_DATA = (
    "auth_date=1&can_send_after=10000"
    "&chat=%7B%22id%22%3A1%2C%22type%22%3A%22group%22%2C%22title%22%3A%22chat-title%22%2C"
    "%22photo_url%22%3A%22group%22%2C%22username%22%3A%22my-chat%22%7D"
    "&chat_instance=888&chat_type=sender"
    "&hash=47cfa22e72b887cba90c9cb833c5ea0f599975b6ce7193741844b5c4a4228b40&query_id=QUERY"
    "&receiver=%7B%22added_to_attachment_menu%22%3Afalse%2C%22allows_write_to_pm%22%3Atrue%2C"
    "%22first_name%22%3A%22receiver-first-name%22%2C%22id%22%3A991%2C%22is_bot%22%3Afalse%2C"
    "%22is_premium%22%3Atrue%2C%22language_code%22%3A%22ru%22%2C%22last_name%22%3A"
    "%22receiver-last-name%22%2C%22photo_url%22%3A%22receiver-photo%22%2C%22username%22%3A"
    "%22receiver-username%22%7D"
    "&start_param=debug"
    "&user=%7B%22added_to_attachment_menu%22%3Afalse%2C%22allows_write_to_pm%22%3Afalse%2C"
    "%22first_name%22%3A%22user-first-name%22%2C%22id%22%3A222%2C%22is_bot%22%3Atrue%2C"
    "%22is_premium%22%3Afalse%2C%22language_code%22%3A%22en%22%2C%22last_name%22%3A"
    "%22user-last-name%22%2C%22photo_url%22%3A%22user-photo%22%2C%22username%22%3A"
    "%22user-username%22%7D"
)


def signed(token: str = TOKEN, **fields: str) -> str:
    values = {
        "query_id": "AAQ-query",
        "user": make_user_field(1001, "Alice", username="alice"),
        "auth_date": str(NOW),
    }
    values.update(fields)
    return sign_init_data(values, token)


def refused(
    raw: str,
    code: str,
    *,
    bot_token: str | None = TOKEN,
    bot_id: int | None = None,
    test_env: bool = False,
    max_age: int = 86400,
    now: float = NOW,
) -> InitDataError:
    with pytest.raises(InitDataError) as caught:
        validate_init_data(
            raw, bot_token=bot_token, bot_id=bot_id, test_env=test_env, max_age=max_age, now=now
        )
    assert caught.value.code == code
    return caught.value


def without(raw: str, key: str) -> str:
    return urlencode([(k, v) for k, v in parse_qsl(raw) if k != key])


def replaced(raw: str, key: str, value: str) -> str:
    return urlencode([(k, value if k == key else v) for k, v in parse_qsl(raw)])


# --- Published vectors -------------------------------------------------------------------------


def test_aiogram_vector_validates() -> None:
    data = validate_init_data(AIOGRAM_VALID, bot_token=AIOGRAM_TOKEN, now=AIOGRAM_AUTH_DATE)
    assert data.user is not None
    assert (data.user.id, data.user.first_name) == (42, "Test")
    assert data.query_id == "test"
    assert data.auth_date == datetime(2022, 4, 19, 16, 22, 22, tzinfo=UTC)


def test_aiogram_vector_with_plus_as_space_is_accepted() -> None:
    fields = dict(parse_qsl(AIOGRAM_PLUS_AS_SPACE))
    published_hash = fields.pop("hash")
    assert '"id": "123456789"' in fields["user"]
    assert dict(parse_qsl(sign_init_data(fields, AIOGRAM_TOKEN)))["hash"] == published_hash
    data = validate_init_data(AIOGRAM_PLUS_AS_SPACE, bot_token=AIOGRAM_TOKEN, now=AIOGRAM_AUTH_DATE)
    assert data.user is not None
    assert data.user.id == 123456789
    assert data.user.last_name == "PlaceholderLastName \U0001f1fa\U0001f1e6"
    assert (data.user.is_premium, data.user.allows_write_to_pm) == (True, True)
    refused(AIOGRAM_PLUS_AS_SPACE, "init_data_bad_signature", bot_token="42:INVALID")


@pytest.mark.parametrize(
    ("token", "raw", "code"),
    [
        ("42:INVALID", AIOGRAM_VALID, "init_data_bad_signature"),
        (
            "42:TEST",
            "user=%7B%22id%22%3A42%2C%22first_name%22%3A%22Test%22%7D&query_id=test&hash=test",
            "init_data_bad_signature",
        ),
        (
            "42:TEST",
            "user=%7B%22id%22%3A42%2C%22first_name%22%3A%22Test%22%7D&query_id=test",
            "init_data_malformed",
        ),
        ("42:TEST", "", "init_data_missing"),
        ("42:TEST", "test&foo=bar=baz", "init_data_malformed"),
        (
            "42:TEST",
            "user=%7B%22id%22%3A42%2C%22first_name%22%3A%22Test%22%7D"
            "&query_id=test&hash=%C3%A9%C3%A9%C3%A9",
            "init_data_bad_signature",
        ),
    ],
)
def test_aiogram_invalid_vectors_are_refused(token: str, raw: str, code: str) -> None:
    refused(raw, code, bot_token=token, now=AIOGRAM_AUTH_DATE)


def test_init_data_golang_vector_validates() -> None:
    data = validate_init_data(GOLANG_INIT_DATA, bot_token=GOLANG_TOKEN, now=GOLANG_AUTH_DATE + 5)
    assert data.hash == GOLANG_HASH
    assert data.query_id == "AAHdF6IQAAAAAN0XohDhrOrc"
    assert data.signature is None
    assert data.user == WebAppUser(
        id=279058397,
        first_name="Vladislav",
        last_name="Kibenko",
        username="vdkfrost",
        language_code="ru",
        is_premium=True,
        allows_write_to_pm=False,
        photo_url=None,
        is_bot=False,
        added_to_attachment_menu=False,
    )


def test_init_data_golang_vector_is_reproduced_by_the_signer() -> None:
    fields = dict(parse_qsl(GOLANG_INIT_DATA))
    del fields["hash"]
    assert dict(parse_qsl(sign_init_data(fields, GOLANG_TOKEN)))["hash"] == GOLANG_HASH


def test_init_data_golang_vector_refusals() -> None:
    refused(GOLANG_INIT_DATA, "init_data_expired", bot_token=GOLANG_TOKEN, now=time.time())
    refused(GOLANG_INIT_DATA + "abc", "init_data_bad_signature", bot_token=GOLANG_TOKEN)
    refused("here comes something wrong;", "init_data_malformed", bot_token=GOLANG_TOKEN)
    refused("no_hash=true", "init_data_malformed", bot_token=GOLANG_TOKEN)


def test_init_data_golang_third_party_vector_validates() -> None:
    data = validate_init_data(
        THIRD_PARTY_INIT_DATA,
        bot_token=None,
        bot_id=THIRD_PARTY_BOT_ID,
        now=THIRD_PARTY_AUTH_DATE + 10,
    )
    assert data.signature is not None
    assert data.signature.startswith("zL-ucjNy")
    assert data.chat_type == "private"
    assert data.chat_instance == "8134722200314281151"
    assert data.user is not None
    assert data.user.first_name == "Vladislav + - ? /"
    assert data.user.allows_write_to_pm is True
    assert data.user.photo_url == (
        "https://t.me/i/userpic/320/4FPEE4tmP3ATHa57u6MqTDih13LTOiMoKoLDRG4PnSA.svg"
    )


@pytest.mark.parametrize(
    ("raw", "bot_id", "test_env"),
    [
        (THIRD_PARTY_INIT_DATA, THIRD_PARTY_BOT_ID + 1, False),
        (THIRD_PARTY_INIT_DATA, THIRD_PARTY_BOT_ID, True),
        (replaced(THIRD_PARTY_INIT_DATA, "chat_type", "group"), THIRD_PARTY_BOT_ID, False),
        (THIRD_PARTY_INIT_DATA + "&extra=1", THIRD_PARTY_BOT_ID, False),
        (without(THIRD_PARTY_INIT_DATA, "signature"), THIRD_PARTY_BOT_ID, False),
        (THIRD_PARTY_INIT_DATA[:-1] + "A", THIRD_PARTY_BOT_ID, False),
        (replaced(THIRD_PARTY_INIT_DATA, "signature", "zL-ucj"), THIRD_PARTY_BOT_ID, False),
        (replaced(THIRD_PARTY_INIT_DATA, "signature", "not base64!"), THIRD_PARTY_BOT_ID, False),
        (replaced(THIRD_PARTY_INIT_DATA, "signature", ""), THIRD_PARTY_BOT_ID, False),
    ],
    ids=[
        "other-bot",
        "test-key",
        "tampered-field",
        "added-field",
        "no-signature",
        "changed-signature",
        "short-signature",
        "not-base64",
        "empty-signature",
    ],
)
def test_third_party_refuses_what_telegram_did_not_sign(
    raw: str, bot_id: int, test_env: bool
) -> None:
    refused(
        raw,
        "init_data_bad_signature",
        bot_token=None,
        bot_id=bot_id,
        test_env=test_env,
        now=THIRD_PARTY_AUTH_DATE,
    )


def test_third_party_checks_freshness() -> None:
    refused(
        THIRD_PARTY_INIT_DATA,
        "init_data_expired",
        bot_token=None,
        bot_id=THIRD_PARTY_BOT_ID,
        now=THIRD_PARTY_AUTH_DATE + 86401,
    )


@pytest.mark.parametrize("suffix", ["&user=other", "&%75ser=other", "&hash=other", "&signature=x"])
def test_duplicate_keys_are_malformed(suffix: str) -> None:
    # From init-data-golang validation_query_test.go: keys are compared after decoding.
    refused(
        THIRD_PARTY_INIT_DATA + suffix,
        "init_data_malformed",
        bot_token=None,
        bot_id=THIRD_PARTY_BOT_ID,
        now=THIRD_PARTY_AUTH_DATE,
    )
    if "signature" not in suffix:
        refused(GOLANG_INIT_DATA + suffix, "init_data_malformed", bot_token=GOLANG_TOKEN)


def test_first_party_is_used_when_a_token_is_configured() -> None:
    refused(
        THIRD_PARTY_INIT_DATA,
        "init_data_bad_signature",
        bot_token=GOLANG_TOKEN,
        bot_id=THIRD_PARTY_BOT_ID,
        now=THIRD_PARTY_AUTH_DATE,
    )


def test_telegram_mini_apps_vector_with_every_field() -> None:
    data = validate_init_data(TMA_INIT_DATA, bot_token=GOLANG_TOKEN, now=1)
    assert data.auth_date == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert data.can_send_after == 10000
    assert data.chat == WebAppChat(
        id=1, type="group", title="chat-title", username="my-chat", photo_url="group"
    )
    assert (data.chat_instance, data.chat_type) == ("888", "sender")
    assert (data.query_id, data.start_param) == ("QUERY", "debug")
    assert data.receiver == WebAppUser(
        id=991,
        first_name="receiver-first-name",
        last_name="receiver-last-name",
        username="receiver-username",
        language_code="ru",
        is_premium=True,
        allows_write_to_pm=True,
        photo_url="receiver-photo",
        is_bot=False,
        added_to_attachment_menu=False,
    )
    assert data.user is not None
    assert (data.user.id, data.user.is_bot, data.user.photo_url) == (222, True, "user-photo")


# --- Signing and the first-party check ---------------------------------------------------------


def test_signed_init_data_round_trips() -> None:
    raw = signed(
        user=make_user_field(
            2**53 + 1,
            "Zoë +1 & co",
            username="zoe",
            last_name="Ünal",
            language_code="de",
            is_premium=True,
            photo_url="https://t.me/i/userpic/320/x.svg",
        ),
        start_param="a b+c&d=e",
    )
    data = validate_init_data(raw, bot_token=TOKEN, now=NOW)
    assert data.user == WebAppUser(
        id=2**53 + 1,
        first_name="Zoë +1 & co",
        last_name="Ünal",
        username="zoe",
        language_code="de",
        is_premium=True,
        allows_write_to_pm=True,
        photo_url="https://t.me/i/userpic/320/x.svg",
        is_bot=False,
        added_to_attachment_menu=False,
    )
    assert data.start_param == "a b+c&d=e"
    assert data.auth_date == datetime.fromtimestamp(NOW, tz=UTC)
    assert data.receiver is None
    assert data.chat is None
    assert data.can_send_after is None


def test_validation_defaults_to_the_current_time() -> None:
    raw = signed(auth_date=str(int(time.time())))
    assert validate_init_data(raw, bot_token=TOKEN).user is not None


def test_make_user_field_is_compact_json_in_telegram_order() -> None:
    assert make_user_field(1001, "Alice", username="alice") == (
        '{"id":1001,"first_name":"Alice","username":"alice","language_code":"en",'
        '"allows_write_to_pm":true}'
    )
    assert json.loads(
        make_user_field(7, "Bob", language_code=None, allows_write_to_pm=False, is_premium=True)
    ) == {"id": 7, "first_name": "Bob", "is_premium": True}


def test_signer_refuses_a_hash_field() -> None:
    with pytest.raises(ValueError, match="hash"):
        sign_init_data({"auth_date": str(NOW), "hash": "x"}, TOKEN)


def test_signature_field_stays_in_the_data_check_string() -> None:
    raw = signed(signature="c2lnbmF0dXJl")
    assert validate_init_data(raw, bot_token=TOKEN, now=NOW).signature == "c2lnbmF0dXJl"
    refused(without(raw, "signature"), "init_data_bad_signature")
    refused(replaced(raw, "signature", "b3RoZXI"), "init_data_bad_signature")


def test_unknown_fields_are_signed_but_otherwise_ignored() -> None:
    raw = signed(future_field="v")
    assert validate_init_data(raw, bot_token=TOKEN, now=NOW).user is not None
    refused(replaced(raw, "future_field", "w"), "init_data_bad_signature")
    refused(without(raw, "future_field"), "init_data_bad_signature")


@pytest.mark.parametrize("key", ["user", "auth_date", "query_id"])
def test_any_changed_field_breaks_the_hash(key: str) -> None:
    raw = signed()
    value = dict(parse_qsl(raw))[key]
    refused(replaced(raw, key, value + " "), "init_data_bad_signature")


def test_another_token_breaks_the_hash() -> None:
    refused(signed(token=TOKEN + "x"), "init_data_bad_signature")


def test_a_configuration_without_token_or_bot_id_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        validate_init_data(signed(), bot_token=None, now=NOW)
    with pytest.raises(RuntimeError):
        validate_init_data(signed(token=""), bot_token="", now=NOW)


# --- Refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["", " ", "\n\t "])
def test_empty_init_data_is_missing(raw: str) -> None:
    refused(raw, "init_data_missing")


@pytest.mark.parametrize(
    "raw",
    [
        "auth_date=1&hash=%zz",
        "auth_date=1&hash=abc%",
        "auth_date=1&hash=%f",
        "auth_date=1&hash=%ff",
        "auth_date=1&hash=%C3",
        "%ff=1&auth_date=1&hash=abc",
        "auth_date=1&&hash=abc",
        "auth_date=1&hash",
        "auth_date=1&hash=abc&",
        "auth_date=1\udcff&hash=abc",
        "auth_date=1",
        "auth_date=1&hash=a&hash=a",
    ],
)
def test_malformed_query_strings(raw: str) -> None:
    refused(raw, "init_data_malformed")


def test_size_limit_is_in_utf8_bytes() -> None:
    base = len(signed(start_param=""))
    at_limit = signed(start_param="a" * (MAX_INIT_DATA_BYTES - base))
    assert len(at_limit) == MAX_INIT_DATA_BYTES
    assert validate_init_data(at_limit, bot_token=TOKEN, now=NOW).start_param is not None

    over = signed(start_param="a" * (MAX_INIT_DATA_BYTES - base + 1))
    refused(over, "init_data_malformed")

    # Characters fit, bytes do not: unencoded "é" is two bytes.
    wide = at_limit[: -(MAX_INIT_DATA_BYTES // 2)] + "é" * (MAX_INIT_DATA_BYTES // 2)
    assert len(wide) == MAX_INIT_DATA_BYTES
    refused(wide, "init_data_malformed")


@pytest.mark.parametrize(
    "fields",
    [
        {"auth_date": ""},
        {"auth_date": "abc"},
        {"auth_date": "1e9"},
        {"auth_date": "-1"},
        {"auth_date": "+1700000000"},
        {"auth_date": " 1700000000"},
        {"auth_date": "1_700_000_000"},
        {"auth_date": "１７００００００００"},
    ],
)
def test_auth_date_must_be_a_decimal_integer(fields: dict[str, str]) -> None:
    refused(signed(**fields), "init_data_malformed")


def test_auth_date_is_required() -> None:
    raw = sign_init_data({"user": make_user_field(1, "A")}, TOKEN)
    refused(raw, "init_data_malformed")


def test_freshness_boundaries() -> None:
    max_age = 3600
    raw = signed(auth_date=str(NOW))

    assert validate_init_data(raw, bot_token=TOKEN, max_age=max_age, now=NOW + max_age)
    refused(raw, "init_data_expired", max_age=max_age, now=NOW + max_age + 1)

    assert validate_init_data(raw, bot_token=TOKEN, now=NOW - FUTURE_SKEW_SECONDS)
    refused(raw, "init_data_expired", now=NOW - FUTURE_SKEW_SECONDS - 1)


def test_default_max_age_is_a_day() -> None:
    raw = signed(auth_date=str(NOW))
    assert validate_init_data(raw, bot_token=TOKEN, now=NOW + 86400)
    refused(raw, "init_data_expired", now=NOW + 86401)


def test_freshness_is_checked_after_the_signature() -> None:
    refused(signed(token="1:other", auth_date="1"), "init_data_bad_signature")
    refused(signed(token="1:other", auth_date="x"), "init_data_bad_signature")


def test_a_far_future_auth_date_is_expired_not_an_overflow() -> None:
    refused(signed(auth_date="9" * 40), "init_data_expired")


USER_WITHOUT_ID = '{"first_name":"A"}'


@pytest.mark.parametrize(
    "user",
    [
        "not json",
        "[1, 2]",
        '"a string"',
        "null",
        USER_WITHOUT_ID,
        '{"id":true,"first_name":"A"}',
        '{"id":1.0,"first_name":"A"}',
        '{"id":"1x","first_name":"A"}',
        '{"id":1,"first_name":"A","is_premium":"yes"}',
        '{"id":9223372036854775808,"first_name":"A"}',
        '{"id":1}',
        '{"id":1,"first_name":null}',
        '{"id":1,"first_name":"A","allows_write_to_pm":1}',
        '{"id":1,"first_name":"A","username":42}',
        '{"id":1,"first_name":"A","photo_url":{}}',
        "[" * 1100 + "]" * 1100,
        '{"id":' + "1" * 5000 + ',"first_name":"A"}',
    ],
)
def test_user_must_be_a_well_typed_object(user: str) -> None:
    refused(signed(user=user), "init_data_malformed")
    refused(signed(receiver=user), "init_data_malformed")


def test_user_ids_may_use_64_bits_and_unknown_keys_are_ignored() -> None:
    user = json.dumps({"id": 2**63 - 1, "first_name": "A", "new_flag": [1], "last_name": None})
    data = validate_init_data(signed(user=user), bot_token=TOKEN, now=NOW)
    assert data.user is not None
    assert data.user.id == 2**63 - 1
    assert data.user.last_name is None


@pytest.mark.parametrize(
    "chat",
    [
        "{}",
        "[]",
        '{"id":false,"type":"group","title":"T"}',
        '{"id":-100,"title":"T"}',
        '{"id":-100,"type":"group"}',
        '{"id":-100,"type":"group","title":"T","username":1}',
        '{"id":-9223372036854775809,"type":"group","title":"T"}',
    ],
)
def test_chat_must_be_a_well_typed_object(chat: str) -> None:
    refused(signed(chat=chat), "init_data_malformed")


def test_chat_ids_are_negative_64_bit() -> None:
    chat = '{"id":-1001234567890123,"type":"supergroup","title":"T"}'
    data = validate_init_data(signed(chat=chat), bot_token=TOKEN, now=NOW)
    assert data.chat == WebAppChat(
        id=-1001234567890123, type="supergroup", title="T", username=None, photo_url=None
    )


@pytest.mark.parametrize("value", ["", "abc", "-1", "1.5", "0x10"])
def test_can_send_after_must_be_an_integer(value: str) -> None:
    refused(signed(can_send_after=value), "init_data_malformed")


def test_errors_are_unauthorized_and_reveal_only_their_kind() -> None:
    secret_part = "very-private-value"
    messages = {
        "init_data_missing": refused("", "init_data_missing").message,
        "init_data_malformed": refused(f"{secret_part}%ff", "init_data_malformed").message,
        "init_data_bad_signature": refused(
            signed(token="1:x", start_param=secret_part), "init_data_bad_signature"
        ).message,
        "init_data_expired": refused(
            signed(auth_date="1", start_param=secret_part), "init_data_expired"
        ).message,
    }
    assert messages == {
        "init_data_missing": "initData is missing",
        "init_data_malformed": "initData is malformed",
        "init_data_bad_signature": "initData signature is invalid",
        "init_data_expired": "initData has expired",
    }
    error = refused(f"{secret_part}%ff&hash=1", "init_data_malformed")
    assert isinstance(error, Unauthorized)
    assert error.status_code == 401
    assert error.__cause__ is None
    assert error.__suppress_context__
    assert secret_part not in str(error)


def test_percent_encoded_keys_and_values_are_decoded_before_hashing() -> None:
    raw = signed(start_param="x y")
    assert "start_param=x+y" in raw
    respelled = raw.replace("start_param=x+y", f"start%5Fparam=x{quote(' ')}y")
    assert validate_init_data(respelled, bot_token=TOKEN, now=NOW).start_param == "x y"
