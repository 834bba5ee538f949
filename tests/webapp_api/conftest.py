"""Signed-up users for the messaging tests."""

from __future__ import annotations

import httpx
import pytest

from tests.support.api import ApiUser, sign_up


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> ApiUser:
    return await sign_up(client, 101, "Alice", "alice")


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> ApiUser:
    return await sign_up(client, 102, "Bob", "bob")


@pytest.fixture
async def carol(client: httpx.AsyncClient) -> ApiUser:
    return await sign_up(client, 103, "Carol", "carol")


@pytest.fixture
async def dave(client: httpx.AsyncClient) -> ApiUser:
    return await sign_up(client, 104, "Dave", "dave")
