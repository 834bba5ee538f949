"""`python -m fuzz.run [--quick] [--seed N] [--database-url URL]`: fuzz the live API.

Serves the API (`python -m webapp_api`, a real uvicorn) on a fresh database (a temporary SQLite
file, or a new database on the PostgreSQL server of `--database-url` / FUZZ_DATABASE_URL) with a
fake OpenAI-compatible vendor (`bench.fake_llm`), signs up a few users with chats, messages, a
photo and an invite link so that generated ids exist, then runs schemathesis over every
operation of /openapi.json twice: as one user with `X-Telegram-Init-Data`, then as another (an
administrator) with a bearer token. Credentials are security schemes, so the fuzzer never makes
up a header that would shadow the valid one.

Fails (exit 1) on any 5xx, on any answer the OpenAPI document does not describe (an undocumented
status code, content type or header, or a body that does not match its schema), and on any
traceback in the server's log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.media.samples import png_bytes
from tests.support.database import fresh_database_url, migrated_engine
from tests.support.server import LiveServer, bind_free_port
from tests.support.telegram import init_data_for

logger = logging.getLogger("fuzz")

ROOT = Path(__file__).resolve().parent.parent
CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"
BOT_TOKEN = f"100200300:{secrets.token_urlsafe(27)}"  # this run's throwaway bot
SEED = 19
# Seconds per pass (two passes): about three minutes in all for CI, ten under `make fuzz`.
PASS_SECONDS = {True: 75, False: 300}
# The bearer pass must not end its own session half-way.
SESSION_ENDING = ("/api/v1/auth/logout", "/api/v1/auth/logout-all")
# Checks the token with Telegram's getMe before anything else: nothing answers Telegram here (the
# suite tests it against the fake Bot API, tests/bot/test_assistant_bots.py).
NEEDS_TELEGRAM = ("/api/v1/assistants/{assistant_id}/bot",)
FAKE_REPLY_TOKENS = 5
ADMIN_TELEGRAM_ID = 700002


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the CI budget (~3 minutes)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--seconds", type=int, help="seconds per pass (overrides --quick)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("FUZZ_DATABASE_URL") or None,
        help="a PostgreSQL server to make the fresh database on (default: a SQLite file)",
    )
    parser.add_argument("--report-dir", type=Path, default=ROOT / "test-artifacts" / "fuzz")
    return parser.parse_args(argv)


def _free_port() -> int:
    sock = bind_free_port()
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@asynccontextmanager
async def process(
    name: str, args: Sequence[str], ready: str, work: Path, env: dict[str, str]
) -> AsyncIterator[LiveServer]:
    """`python -m <args>` serving on a free port (PORT, and `{port}` in `args`) until `ready`
    answers 200. Its output goes to `<work>/<name>.log`."""
    port = _free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "FUZZ_"))},
        "PYTHONPATH": str(ROOT),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        **env,
    }
    log_path = work / f"{name}.log"
    with log_path.open("wb") as log:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            *(arg.format(port=port) for arg in args),
            cwd=work,
            env=environment,
            stdout=log,
            stderr=log,
        )
        server = LiveServer("127.0.0.1", port)
        try:
            async with httpx.AsyncClient(base_url=server.base_url) as client, asyncio.timeout(60):
                while True:
                    if child.returncode is not None:
                        raise RuntimeError(f"{name} exited during start-up: see {log_path}")
                    with contextlib.suppress(httpx.TransportError):
                        if (await client.get(ready)).status_code == 200:
                            break
                    await asyncio.sleep(0.1)
            yield server
        finally:
            child.terminate()
            await child.wait()


def api_environment(database_url: str, work: Path, llm: LiveServer) -> dict[str, str]:
    return {
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": "",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "BOT_TOKEN": BOT_TOKEN,
        "BOT_MODE": "off",
        "DEV_LOGIN": "false",
        "MEDIA_DIR": str(work / "media"),
        # Nothing listens there: payments answer 503 instead of reaching Telegram.
        "TELEGRAM_API_BASE": "http://127.0.0.1:9",
        # The AI answers (a fake OpenAI-compatible vendor), so its routes are fuzzed for real.
        "OPENAI_API_KEY": "fuzz-key",
        "OPENAI_BASE_URL": f"{llm.base_url}/v1",
        "LLM_DEFAULT_MODEL": "gpt-4o-mini",
        "LLM_MODELS": "",
        "LLM_MODELS_FILE": "",
        "ANTHROPIC_API_KEY": "",
        # Limits far away, so that the logic behind them is what gets fuzzed (their 429s are
        # tested by the suite).
        "SENDS_PER_MINUTE": "100000",
        "SEND_BURST": "100000",
        "CHAT_CREATES_PER_HOUR": "100000",
        "CHAT_CREATE_BURST": "100000",
        "INVITES_PER_HOUR": "100000",
        "INVITE_BURST": "100000",
        "MEDIA_UPLOADS_PER_MINUTE": "100000",
        "AI_USER_REPLIES_PER_MINUTE": "100000",
        "AI_GROUP_ALWAYS_REPLIES_PER_MINUTE": "100000",
        # Bob (the bearer pass, the last) is an administrator: the admin routes answer for real.
        "ADMIN_TELEGRAM_IDS": str(ADMIN_TELEGRAM_ID),
        "LOG_LEVEL": "WARNING",
    }


async def _ok(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Any:
    response = await client.request(method, path, **kwargs)
    if response.status_code != 200:
        raise RuntimeError(f"seeding: {method} {path} -> {response.status_code} {response.text}")
    return response.json()


async def seed(server: LiveServer) -> dict[str, str]:
    """Users, chats, messages, a photo and an invite link; returns each user's initData."""
    people = {
        "alice": init_data_for(700001, "Alice", username="alice_fuzz", token=BOT_TOKEN),
        "bob": init_data_for(ADMIN_TELEGRAM_ID, "Bob", username="bob_fuzz", token=BOT_TOKEN),
        "carol": init_data_for(700003, "Carol", username="carol_fuzz", token=BOT_TOKEN),
    }
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        as_ = {name: {"X-Telegram-Init-Data": raw} for name, raw in people.items()}
        ids = {
            name: (await _ok(client, "GET", "/api/v1/me", headers=h))["id"]
            for name, h in as_.items()
        }
        group = await _ok(
            client,
            "POST",
            "/api/v1/chats",
            headers=as_["alice"],
            json={"chat_type": "group", "title": "Fuzz", "member_ids": [ids["bob"], ids["carol"]]},
        )
        private = await _ok(
            client,
            "POST",
            "/api/v1/chats",
            headers=as_["alice"],
            json={"chat_type": "private", "member_ids": [ids["bob"]]},
        )
        photo = await _ok(
            client,
            "POST",
            "/api/v1/media",
            headers=as_["alice"],
            files={"file": ("photo.png", png_bytes(), "image/png")},
        )
        for chat in (group, private):
            first = await _ok(
                client,
                "POST",
                f"/api/v1/chats/{chat['id']}/messages",
                headers=as_["alice"],
                json={"text": "hello", "media_ids": [photo["id"]] if chat is group else []},
            )
            reply = await _ok(
                client,
                "POST",
                f"/api/v1/chats/{chat['id']}/messages",
                headers=as_["bob"],
                json={"text": "hi", "reply_to_message_id": first["id"]},
            )
            await _ok(
                client,
                "PUT",
                f"/api/v1/messages/{reply['id']}/reaction",
                headers=as_["alice"],
                json={"emoji": "👍"},
            )
            await _ok(client, "POST", f"/api/v1/messages/{first['id']}/pin", headers=as_["alice"])
        await _ok(client, "POST", f"/api/v1/chats/{group['id']}/invite-link", headers=as_["alice"])
    return people


async def bearer_token(server: LiveServer, raw_init_data: str) -> str:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        tokens = await _ok(
            client, "POST", "/api/v1/auth/telegram", json={"init_data": raw_init_data}
        )
    return str(tokens["access_token"])


async def schemathesis(
    server: LiveServer, header: str, args: argparse.Namespace, name: str, *extra: str
) -> int:
    seconds = args.seconds or PASS_SECONDS[args.quick]
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        f"{server.base_url}/openapi.json",
        "--header",
        header,
        "--seed",
        str(args.seed),
        "--max-time",
        str(seconds),
        "--report",
        "junit",
        "--report-junit-path",
        str(args.report_dir / f"{name}.xml"),
        *extra,
    ]
    logger.info("fuzz pass '%s': %d s, seed %d", name, seconds, args.seed)
    process = await asyncio.create_subprocess_exec(*command, cwd=ROOT)
    return await process.wait()


async def run(args: argparse.Namespace) -> int:
    args.report_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        work = Path(tmp)
        async with fresh_database_url(args.database_url, work) as database_url:
            engine = await migrated_engine(database_url)
            await engine.dispose()
            async with (
                process("llm", ["bench.fake_llm", "--port", "{port}"], "/health", work, {}) as llm,
                process(
                    "api",
                    ["webapp_api"],
                    "/health/ready",
                    work,
                    api_environment(database_url, work, llm),
                ) as server,
            ):
                async with httpx.AsyncClient(base_url=llm.base_url) as client:
                    await client.post("/config", json={"tokens": FAKE_REPLY_TOKENS})
                people = await seed(server)
                outside = [arg for path in NEEDS_TELEGRAM for arg in ("--exclude-path", path)]
                failed = await schemathesis(
                    server,
                    f"X-Telegram-Init-Data: {people['alice']}",
                    args,
                    "init-data",
                    *outside,
                )
                token = await bearer_token(server, people["bob"])
                failed |= await schemathesis(
                    server,
                    f"Authorization: Bearer {token}",
                    args,
                    "bearer",
                    *outside,
                    *(arg for path in SESSION_ENDING for arg in ("--exclude-path", path)),
                )
            log = (work / "api.log").read_text(errors="replace")
            if "Traceback" in log:
                logger.error("the server logged errors:\n%s", log)
                failed = 1
    logger.info("fuzz: %s", "FAILED" if failed else "passed")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="== %(message)s")
    sys.exit(asyncio.run(run(_parse(argv))))


if __name__ == "__main__":
    main()
