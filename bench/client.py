"""What a client of the API needs: signed initData, and an HTTP client.

Two HTTP clients are available. httpx is what the project's tests use, but on this kind of
machine it spends ~0.8 ms of CPU per request in the client, about as much as a cheap request
costs the server; aiohttp (already pinned, through aiogram) spends ~0.1 ms. The load generator
uses aiohttp unless told otherwise (`--http httpx`), so that the client is not what saturates.
"""

from __future__ import annotations

import json
import time
from typing import Literal, Protocol

import aiohttp
import httpx

from core.telegram_auth import make_user_field, sign_init_data

HttpImpl = Literal["aiohttp", "httpx"]

# A bot-token-shaped value; the servers of the benchmark check initData against it.
BENCH_BOT_TOKEN = "7000000001:BenchBenchBenchBenchBenchBenchBench"  # noqa: S105
JSON_HEADERS = {"Content-Type": "application/json"}


def init_data(telegram_id: int, first_name: str, bot_token: str = BENCH_BOT_TOKEN) -> str:
    """Telegram.WebApp.initData for a user, signed as Telegram would sign it."""
    fields = {
        "query_id": f"AAB{telegram_id}",
        "user": make_user_field(telegram_id, first_name, username=f"u{telegram_id}"),
        "auth_date": str(int(time.time())),
    }
    return sign_init_data(fields, bot_token)


class HttpError(Exception):
    def __init__(self, method: str, url: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {url}: {status} {body[:300]!r}")
        self.status = status


class HttpClient(Protocol):
    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: object | None = None,
    ) -> tuple[int, bytes]:
        """Status and body; transport failures raise (aiohttp.ClientError, httpx.HTTPError,
        OSError, TimeoutError)."""
        ...

    async def close(self) -> None: ...


class AiohttpClient:
    def __init__(self, max_connections: int, timeout: float) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections, limit_per_host=0),
            timeout=aiohttp.ClientTimeout(total=timeout),
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: object | None = None,
    ) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        all_headers = {**JSON_HEADERS, **(headers or {})} if data is not None else headers
        async with self._session.request(method, url, headers=all_headers, data=data) as response:
            return response.status, await response.read()

    async def close(self) -> None:
        await self._session.close()


class HttpxClient:
    def __init__(self, max_connections: int, timeout: float) -> None:
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            timeout=timeout,
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: object | None = None,
    ) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        all_headers = {**JSON_HEADERS, **(headers or {})} if data is not None else headers
        response = await self._client.request(method, url, headers=all_headers, content=data)
        return response.status_code, response.content

    async def close(self) -> None:
        await self._client.aclose()


def http_client(impl: HttpImpl, *, max_connections: int = 256, timeout: float = 60.0) -> HttpClient:
    """A client for the running event loop."""
    if impl == "httpx":
        return HttpxClient(max_connections, timeout)
    return AiohttpClient(max_connections, timeout)


async def request_json(
    client: HttpClient,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: object | None = None,
) -> object:
    """The decoded JSON of a request that must answer 200."""
    status, content = await client.request(method, url, headers=headers, body=body)
    if status != 200:
        raise HttpError(method, url, status, content)
    return json.loads(content)
