"""The reference Mini App client at `/app`, and `/app/dev`: demo users for development.

`/app/dev` signs initData on the server for a user picked or made up on the page and opens the
client the way Telegram does (`/app#tgWebAppData=...`), so the client goes through the real
signature check. It answers only with DEV_LOGIN on (never in production) and only to loopback.
"""

from __future__ import annotations

import html
import json
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from core.bounds import Id
from core.devtools import demo_init_data
from core.errors import NotFound, Unprocessable
from core.settings import Settings
from models import User
from services.users import get_user, list_people
from webapp_api.deps import Session, from_this_machine

CLIENT_DIR = Path(__file__).resolve().parent.parent / "client"
TELEGRAM_SCRIPT_ORIGIN = "https://telegram.org"
DEMO_USERS_SHOWN = 50
# Made-up Telegram ids for new demo users: far above today's real ones.
DEMO_TELEGRAM_IDS = range(9_000_000_000, 9_900_000_000)

# What Telegram passes in tgWebAppThemeParams (its default light and dark themes).
THEMES: dict[str, dict[str, str]] = {
    "light": {
        "bg_color": "#ffffff",
        "text_color": "#000000",
        "hint_color": "#999999",
        "link_color": "#2481cc",
        "button_color": "#2481cc",
        "button_text_color": "#ffffff",
        "secondary_bg_color": "#efeff3",
        "header_bg_color": "#ffffff",
        "accent_text_color": "#2481cc",
        "section_bg_color": "#ffffff",
        "section_header_text_color": "#6d6d72",
        "subtitle_text_color": "#999999",
        "destructive_text_color": "#ff3b30",
    },
    "dark": {
        "bg_color": "#212121",
        "text_color": "#ffffff",
        "hint_color": "#aaaaaa",
        "link_color": "#8774e1",
        "button_color": "#8774e1",
        "button_text_color": "#ffffff",
        "secondary_bg_color": "#181818",
        "header_bg_color": "#212121",
        "accent_text_color": "#8774e1",
        "section_bg_color": "#212121",
        "section_header_text_color": "#aaaaaa",
        "subtitle_text_color": "#aaaaaa",
        "destructive_text_color": "#ff595a",
    },
}

router = APIRouter(include_in_schema=False)


class ClientFiles(StaticFiles):
    """The client's modules and styles; revalidated on every load (there is no build step that
    would put a version in their names), answered with 304 while unchanged."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def content_security_policy(settings: Settings) -> str:
    media = " ".join(filter(None, ("'self'", "blob:", "data:", settings.public_base_url)))
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' {TELEGRAM_SCRIPT_ORIGIN}",
            "style-src 'self' 'unsafe-inline'",
            f"img-src {media}",
            f"media-src {media}",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
        )
    )


@router.get("/app")
async def client_index(request: Request) -> FileResponse:
    settings: Settings = request.app.state.settings
    return FileResponse(
        CLIENT_DIR / "index.html",
        headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": content_security_policy(settings),
        },
    )


def _require_dev_login(request: Request) -> Settings:
    """Not found unless DEV_LOGIN is on and the caller is on this machine (not via a proxy)."""
    settings: Settings = request.app.state.settings
    if not settings.dev_login_enabled or not from_this_machine(request):
        raise NotFound("Not found", code="not_found")
    return settings


def _signing_token(settings: Settings) -> str:
    token = settings.bot_token_value()
    if token is None:
        # BOT_ID only: initData is checked with Telegram's public key, which we cannot sign with.
        raise NotFound("The development login needs BOT_TOKEN", code="dev_login_unavailable")
    return token


@router.get("/app/dev")
async def dev_page(request: Request, session: Session) -> HTMLResponse:
    settings = _require_dev_login(request)
    _signing_token(settings)
    people = await list_people(session, limit=DEMO_USERS_SHOWN)
    return HTMLResponse(
        _render_dev_page(people),
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "form-action 'self'; base-uri 'none'",
        },
    )


@router.post("/app/dev/open")
async def dev_open(
    request: Request,
    session: Session,
    user_id: Annotated[Id | None, Form()] = None,
    first_name: Annotated[str | None, Form(min_length=1, max_length=64)] = None,
    username: Annotated[str | None, Form(pattern=r"^[A-Za-z][A-Za-z0-9_]{4,31}$")] = None,
    theme: Annotated[Literal["light", "dark"], Form()] = "light",
    start_param: Annotated[str | None, Form(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = None,
) -> RedirectResponse:
    """Opens the client as an existing user (`user_id`) or a new one (`first_name`)."""
    settings = _require_dev_login(request)
    bot_token = _signing_token(settings)
    if user_id is not None:
        user = await get_user(session, user_id)
        if user.is_bot:
            raise NotFound("User not found", code="user_not_found")
        telegram_id, first_name, username = user.telegram_id, user.first_name, user.username
        last_name, language_code = user.last_name, user.language_code
    elif first_name is not None and first_name.strip():
        telegram_id = DEMO_TELEGRAM_IDS.start + secrets.randbelow(len(DEMO_TELEGRAM_IDS))
        first_name, last_name, language_code = first_name.strip(), None, "en"
    else:
        raise Unprocessable("Pick a user or give a first name", code="dev_user_missing")
    init_data = demo_init_data(
        bot_token,
        telegram_id,
        first_name,
        username=username,
        last_name=last_name,
        language_code=language_code,
        start_param=start_param,
    )
    launch = urlencode(
        {
            "tgWebAppData": init_data,
            "tgWebAppVersion": "8.0",
            "tgWebAppPlatform": "weba",
            "tgWebAppThemeParams": json.dumps(THEMES[theme], separators=(",", ":")),
            **({"tgWebAppStartParam": start_param} if start_param else {}),
        }
    )
    return RedirectResponse(f"/app#{launch}", status_code=303)


def _render_dev_page(people: list[User]) -> str:
    rows = "\n".join(
        f"""<li><form method="post" action="/app/dev/open" target="_blank">
<input type="hidden" name="user_id" value="{person.id}">
<span class="who">{html.escape(person.first_name)}
{f"<small>@{html.escape(person.username)}</small>" if person.username else ""}</span>
{_THEME_PICKER}<button type="submit">Open</button></form></li>"""
        for person in people
    )
    return _DEV_PAGE.format(
        rows=rows or "<li><em>Nobody yet: make someone below.</em></li>",
        theme_picker=_THEME_PICKER,
    )


_THEME_PICKER = """<select name="theme" aria-label="Theme">
<option value="light">light</option><option value="dark">dark</option></select>"""

_DEV_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>AI Messenger: development login</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; max-width: 36rem; margin: 2rem auto;
  padding: 0 1rem; color: #222; }}
h1 {{ font-size: 1.3rem; }} ul {{ list-style: none; padding: 0; }}
li form, .new {{ display: flex; gap: .5rem; align-items: center; padding: .4rem 0;
  border-bottom: 1px solid #eee; }}
.who {{ flex: 1; }} small {{ color: #888; }}
input[type=text] {{ flex: 1; padding: .3rem; }} button {{ padding: .3rem .8rem; }}
p.note {{ color: #666; font-size: .9rem; }}
</style></head><body>
<h1>Development login</h1>
<p class="note">Opens the Mini App client in a new tab with initData this server signs for the
user, as Telegram would. Open two users side by side to chat with each other and with the AI.
This page exists only in development and only on this machine.</p>
<h2>People</h2>
<ul>
{rows}
</ul>
<h2>Someone new</h2>
<form class="new" method="post" action="/app/dev/open" target="_blank">
<input type="text" name="first_name" placeholder="First name" required maxlength="64"
 aria-label="First name">
<input type="text" name="username" placeholder="username (optional)"
 pattern="[A-Za-z][A-Za-z0-9_]{{4,31}}" aria-label="Username">
{theme_picker}<button type="submit">Create and open</button>
</form>
</body></html>
"""
