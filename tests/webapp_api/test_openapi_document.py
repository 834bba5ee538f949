"""The OpenAPI document tells tools (Swagger UI, fuzzers, client generators) the truth: credentials
are security schemes, not parameters; every error a route answers is listed with its body; ids
carry their bounds."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

CREDENTIAL_HEADERS = {"authorization", "x-telegram-init-data"}
ERROR_BODIES = {"#/components/schemas/ErrorOut", "#/components/schemas/ValidationErrorOut"}
# Their 503 is the health report itself, not an error body.
HEALTH_CHECKS = {"/api/v1/health", "/health/ready"}
BODILESS = "416"  # a download's range past the file: no body


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_credentials_are_security_schemes_not_parameters(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"] == {
        "TelegramInitData": {
            "type": "apiKey",
            "in": "header",
            "name": "X-Telegram-Init-Data",
            "description": "The raw `Telegram.WebApp.initData` string.",
        },
        "BearerToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "An access token from `POST /api/v1/auth/telegram`.",
        },
    }
    for method, path, operation in _operations(document):
        headers = {
            p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"
        }
        assert not headers & CREDENTIAL_HEADERS, (method, path)
        if "security" in operation:
            # Either credential will do.
            assert operation["security"] == [{"TelegramInitData": []}, {"BearerToken": []}]


def test_every_error_a_route_answers_is_documented_with_the_error_body(
    document: dict[str, Any],
) -> None:
    secured = 0
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        if "security" in operation:
            secured += 1
            assert "401" in responses, (method, path)
        for status, response in responses.items():
            if int(status) < 400 or path in HEALTH_CHECKS or status == BODILESS:
                continue
            schema = response["content"]["application/json"]["schema"]
            assert schema["$ref"] in ERROR_BODIES, (method, path, status)
    assert secured >= 60


def test_path_ids_carry_the_bigint_bounds(document: dict[str, Any]) -> None:
    ids = [
        parameter["schema"]
        for _method, _path, operation in _operations(document)
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path" and parameter["name"].endswith("_id")
    ]
    assert len(ids) > 40
    for schema in ids:
        assert (schema["type"], schema["format"], schema["minimum"]) == ("integer", "int64", 1)
        assert schema["maximum"] == 2**63 - 1


def test_conditional_reads_document_their_304(document: dict[str, Any]) -> None:
    conditional = [
        document["paths"][path]["get"]["responses"]
        for path in ("/api/v1/chats", "/api/v1/messages/chat/{chat_id}", "/api/v1/me")
    ]
    for responses in conditional:
        assert "304" in responses
        assert "content" not in responses["304"]
