"""The Bot API's wire: parameters read as Telegram reads them, and errors answered in its
format, with its texts."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse

Json = dict[str, Any]
ChatType = Literal["private", "group", "supergroup", "channel"]

TOKEN_PATTERN = re.compile(r"\d+:[\w-]+")
MAX_TEXT_LENGTH = 4096
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"


class ApiError(Exception):
    """An error answer: {"ok": false, "error_code": code, "description": ..., "parameters"}."""

    def __init__(self, code: int, description: str, parameters: Json | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters or {}


# Parameters that aiogram sends as plain strings (it JSON-encodes every other value); real
# Telegram knows each parameter's type, so a text "123" stays a string.
_STRING_PARAMS = frozenset(
    {"text", "parse_mode", "callback_query_id", "pre_checkout_query_id", "error_message"}
    | {"url", "secret_token", "ip_address", "title", "description", "payload", "currency"}
    | {"provider_token", "telegram_payment_charge_id", "action", "language_code"}
    | {"business_connection_id", "inline_message_id", "message_effect_id", "start_parameter"}
    | {"photo_url", "provider_data", "custom_emoji_id", "short_description", "name"}
    | {"file_id", "voice"}
)


_BUTTON_ACTIONS = frozenset(
    {"url", "callback_data", "web_app", "login_url", "switch_inline_query", "pay"}
    | {"switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text"}
    | {"callback_game"}
)


def chat_type_of(chat_id: int) -> ChatType:
    if chat_id > 0:
        return "private"
    return "supergroup" if chat_id <= -1_000_000_000_000 else "group"


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def required_int(params: Json, name: str) -> int:
    value = params.get(name)
    if value is None or value == "":
        raise ApiError(400, f"Bad Request: {name} is empty")
    number = as_int(value)
    if number is None:
        raise ApiError(400, f"Bad Request: invalid {name} specified")
    return number


def required_str(params: Json, name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise ApiError(400, f"Bad Request: {name} is empty")
    return str(value)


def required_chat_id(params: Json) -> int:
    value = params.get("chat_id")
    if value is None or value == "":
        raise ApiError(400, "Bad Request: chat_id is empty")
    chat_id = as_int(value)
    if chat_id is None or chat_id == 0:  # "@channelusername": no such chat here
        raise ApiError(400, "Bad Request: chat not found")
    return chat_id


def flag(params: Json, name: str) -> bool:
    return params.get(name) in (True, "true", "True", 1, "1")


def inline_markup(markup: Any) -> Json | None:
    """The reply_markup a message shows (inline keyboards only), validated as Telegram does."""
    if markup is None or markup == "":
        return None
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return None  # reply keyboards and their removal are not part of the Message
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise ApiError(
            400, 'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup must be an Array'
        )
    for row in rows:
        for button in row:
            _check_button(button)
    return markup if any(rows) else None


def _check_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise ApiError(
            400,
            'Bad Request: can\'t parse inline keyboard button: Field "text" must be of type String',
        )
    if not _BUTTON_ACTIONS & button.keys():
        raise ApiError(
            400,
            "Bad Request: can't parse inline keyboard button: "
            "Text buttons are unallowed in the inline keyboard",
        )
    data = button.get("callback_data")
    if data is not None and not 1 <= len(str(data).encode()) <= 64:
        raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    web_app = button.get("web_app")
    if isinstance(web_app, dict):
        url = str(web_app.get("url", ""))
        if not url.startswith("https://"):
            raise ApiError(
                400,
                f"Bad Request: inline keyboard button Web App URL '{url}' is invalid: "
                "Only HTTPS links are allowed",
            )


def _decode(name: str, value: str) -> Any:
    if name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


async def read_params(request: Request) -> Json:
    """Query string and body parameters, as Telegram reads them (the body wins)."""
    params: Json = {key: _decode(key, value) for key, value in request.query_params.items()}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON object") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: can't parse JSON object")
        params.update(body)
    elif content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        async with request.form() as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    params[key] = await value.read()
                else:
                    params[key] = _decode(key, value)
    return params


def error_response(error: ApiError) -> JSONResponse:
    body: Json = {"ok": False, "error_code": error.code, "description": error.description}
    if error.parameters:
        body["parameters"] = error.parameters
    return JSONResponse(body, status_code=error.code)
