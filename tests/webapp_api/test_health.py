from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import make_settings
from tests.support.server import live_server
from webapp_api.app import create_app


async def test_health_reports_database_and_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "database": "connected", "version": "0.1.0"}


async def test_liveness_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "alive"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["database"] is True


async def test_not_ready_when_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = make_settings(
        "postgresql+asyncpg://nobody@127.0.0.1:1/none", tmp_path, redis_url=None
    )
    async with (
        live_server(create_app(settings)) as server,
        httpx.AsyncClient(base_url=server.base_url) as client,
    ):
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json() == {"status": "not_ready", "database": False, "redis": None}
        health = await client.get("/api/v1/health")
        assert health.status_code == 503
        assert health.json()["status"] == "unhealthy"


async def test_not_ready_when_configured_redis_is_unreachable(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, redis_url="redis://127.0.0.1:1/0")
    async with (
        live_server(create_app(settings)) as server,
        httpx.AsyncClient(base_url=server.base_url) as client,
    ):
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["redis"] is False


async def test_trailing_slash_is_served_without_redirect(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health/", follow_redirects=False)
    assert response.status_code == 200


async def test_errors_have_one_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/does-not-exist")
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found", "code": "not_found", "status_code": 404}
    response = await client.post("/api/v1/health")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/health/live", headers={"X-Request-ID": "bad id; drop"})
    assert made.headers["x-request-id"] not in ("", "bad id; drop")


async def test_cors_allows_configured_origins_and_the_init_data_header(
    client: httpx.AsyncClient,
) -> None:
    preflight = await client.options(
        "/api/v1/health",
        headers={
            "Origin": "https://miniapp.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-Telegram-Init-Data",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://miniapp.example"
    assert "x-telegram-init-data" in preflight.headers["access-control-allow-headers"].lower()
    other = await client.get("/api/v1/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
