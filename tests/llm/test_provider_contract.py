"""What every provider does alike, through its vendor's real SDK against the fake vendor:
broken streams, timeouts, cancellation, reuse after an error, and nothing secret in the logs.
Each test runs once per vendor; what differs (wire fields, error mapping) is in the vendor's
own test module."""

from __future__ import annotations

import asyncio
import logging

import pytest

from llm.base import ChatTurn, LLMError, Provider, StreamEvent, TextDelta
from tests.llm.support import Vendor, collect, collect_until_error, completion, split
from tests.support.fake_llm import FakeLLM, FakeReply
from tests.support.server import bind_free_port, wait_until


async def until_error(provider: Provider) -> tuple[list[str], LLMError]:
    """The deltas before the stream failed and its error; the provider is closed after."""
    try:
        return await collect_until_error(provider, completion())
    finally:
        await provider.close()


async def test_dropped_connection_mid_stream(fake_llm: FakeLLM, provider: Provider) -> None:
    fake_llm.script(FakeReply(text="abcdefghijkl", chunk_size=2, drop_after_chunks=2))
    deltas, error = await collect_until_error(provider, completion())
    assert deltas == ["ab", "cd"]
    assert (error.code, error.retryable) == ("connection_lost", True)


async def test_unreachable_server(vendor: Vendor) -> None:
    sock = bind_free_port()
    port = sock.getsockname()[1]
    sock.close()
    _, error = await until_error(vendor.provider(f"http://127.0.0.1:{port}"))
    assert (error.code, error.retryable) == ("upstream_error", True)


async def test_a_server_that_never_answers_is_a_timeout(vendor: Vendor) -> None:
    with bind_free_port() as sock:
        sock.listen()  # the kernel accepts the connection; nobody ever answers
        port = sock.getsockname()[1]
        deltas, error = await until_error(
            vendor.provider(f"http://127.0.0.1:{port}", timeout=5, stall_timeout=0.2)
        )
    assert deltas == []
    assert (error.code, error.retryable) == ("timeout", True)


async def test_no_first_chunk_in_time_is_a_timeout(fake_llm: FakeLLM, vendor: Vendor) -> None:
    fake_llm.script(FakeReply(gate=asyncio.Event()))
    deltas, error = await until_error(
        vendor.provider(fake_llm.base_url, timeout=5, stall_timeout=0.2)
    )
    assert deltas == []
    assert (error.code, error.retryable) == ("timeout", True)
    await wait_until(lambda: fake_llm.disconnects == 1)


async def test_stalled_stream_is_a_timeout(fake_llm: FakeLLM, vendor: Vendor) -> None:
    fake_llm.script(FakeReply(text="abcdef", chunk_size=3, delay=30))
    deltas, error = await until_error(
        vendor.provider(fake_llm.base_url, timeout=5, stall_timeout=0.2)
    )
    assert deltas == ["abc"]
    assert (error.code, error.retryable) == ("timeout", True)
    await wait_until(lambda: fake_llm.disconnects == 1)


async def test_closing_the_stream_early_disconnects_upstream(
    fake_llm: FakeLLM, provider: Provider
) -> None:
    fake_llm.script(FakeReply(text="x" * 300, chunk_size=1, delay=0.05))
    events = provider.stream(completion())
    assert await anext(events) == TextDelta("x")
    await events.aclose()
    await wait_until(lambda: fake_llm.disconnects == 1, timeout=2)


async def test_cancelling_the_consumer_mid_stream_disconnects_upstream(
    fake_llm: FakeLLM, provider: Provider
) -> None:
    fake_llm.script(FakeReply(text="abcdef", chunk_size=3, delay=30))
    received: list[StreamEvent] = []

    async def consume() -> None:
        async for event in provider.stream(completion()):
            received.append(event)

    task = asyncio.create_task(consume())
    await wait_until(lambda: received == [TextDelta("abc")])
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until(lambda: fake_llm.disconnects == 1, timeout=2)


async def test_cancelling_the_consumer_before_the_first_chunk_disconnects_upstream(
    fake_llm: FakeLLM, provider: Provider
) -> None:
    fake_llm.script(FakeReply(gate=asyncio.Event()))
    task = asyncio.create_task(collect(provider, completion()))
    await wait_until(lambda: len(fake_llm.requests) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until(lambda: fake_llm.disconnects == 1, timeout=2)


async def test_provider_is_reusable_after_an_error(
    fake_llm: FakeLLM, provider: Provider, vendor: Vendor
) -> None:
    fake_llm.script(FakeReply(status=vendor.server_error), FakeReply(text="fine"))
    with pytest.raises(LLMError):
        await collect(provider, completion())
    deltas, _ = split(await collect(provider, completion()))
    assert "".join(deltas) == "fine"


async def test_prompts_and_keys_never_reach_the_logs(
    fake_llm: FakeLLM, provider: Provider, vendor: Vendor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_llm.script(FakeReply(), FakeReply(status=400))
    request = completion(system="classified system", turns=[ChatTurn("user", "classified turn")])
    await collect(provider, request)
    with pytest.raises(LLMError):
        await collect(provider, request)
    assert caplog.records, "DEBUG logging is on"
    assert "classified" not in caplog.text
    assert vendor.api_key not in caplog.text
