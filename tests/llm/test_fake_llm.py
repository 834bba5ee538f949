"""The fake vendor itself: its non-streaming answers parse in the real SDKs, its defaults."""

from __future__ import annotations

import anthropic
import openai

from llm.base import ChatTurn, Usage
from llm.openai_provider import OpenAIProvider
from llm.tokens import estimate_prompt_tokens, estimate_tokens
from tests.llm.support import collect, completion, split
from tests.support.fake_llm import FakeLLM, FakeLLMServer, FakeReply


async def test_openai_non_streaming_completion(fake_llm: FakeLLM) -> None:
    fake_llm.script(FakeReply(text="Plain answer.", input_tokens=12, output_tokens=3))
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=f"{fake_llm.base_url}/v1")
    try:
        result = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
        )
    finally:
        await client.close()
    assert result.choices[0].message.content == "Plain answer."
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (12, 3)


async def test_anthropic_non_streaming_message(fake_llm: FakeLLM) -> None:
    fake_llm.script(FakeReply(text="Plain answer.", input_tokens=12, output_tokens=3))
    client = anthropic.AsyncAnthropic(api_key="sk-ant-test", base_url=fake_llm.base_url)
    try:
        result = await client.messages.create(
            model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
        )
    finally:
        await client.close()
    assert len(result.content) == 1
    assert result.content[0].type == "text"
    assert result.content[0].text == "Plain answer."
    assert (result.usage.input_tokens, result.usage.output_tokens) == (12, 3)


async def test_default_reply_and_estimated_usage(fake_llm: FakeLLM) -> None:
    provider = OpenAIProvider(api_key="sk-test", base_url=f"{fake_llm.base_url}/v1")
    request = completion(system="Be kind.", turns=[ChatTurn("user", "Hello")])
    try:
        deltas, usage = split(await collect(provider, request))
    finally:
        await provider.close()
    assert "".join(deltas) == FakeReply().text
    assert usage == Usage(
        estimate_prompt_tokens("Be kind.", request.turns), estimate_tokens(FakeReply().text)
    )


async def test_each_test_gets_its_own_view_of_one_server(
    fake_llm_server: FakeLLMServer, fake_llm: FakeLLM
) -> None:
    assert fake_llm.base_url == fake_llm_server.base_url
    assert fake_llm_server.current is fake_llm
    assert fake_llm.requests == []
    assert fake_llm.disconnects == 0
