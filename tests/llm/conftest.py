"""Each vendor's provider against the fake vendor, for tests that run once per vendor (a vendor's
own module defines a `provider` fixture of its own)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from llm.base import Provider
from tests.llm.support import VENDORS, Vendor
from tests.support.fake_llm import FakeLLM


@pytest.fixture(params=VENDORS, ids=[vendor.name for vendor in VENDORS])
def vendor(request: pytest.FixtureRequest) -> Vendor:
    chosen: Vendor = request.param
    return chosen


@pytest.fixture
async def provider(fake_llm: FakeLLM, vendor: Vendor) -> AsyncIterator[Provider]:
    provider = vendor.provider(fake_llm.base_url, timeout=5)
    yield provider
    await provider.close()
