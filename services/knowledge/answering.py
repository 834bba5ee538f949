"""Assistants answering from their knowledge. Before a reply is built, the passages retrieved
for the message it answers go into the system prompt as numbered sources, with the instruction
to answer from them, cite them as [n], and say so when they do not cover the question. When the
reply ends, the sources it cited are appended to it as footnotes ("Sources:" and one line per
cited source), which the Mini App and Telegram show alike.

What was retrieved for a reply is remembered in the process that runs it (the runner that
claimed it both builds and finishes it; one that dies has its reply run again, and retrieved
again, elsewhere). The question's embedding is added to the reply's cost.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy.ext.asyncio import AsyncSession

from llm.base import LLMError
from llm.tokens import estimate_tokens
from models import AiReply, Assistant, Message
from services.knowledge.retrieval import SOURCES_MAX_TOKENS, Passage, has_knowledge, retrieve
from services.knowledge.runtime import KnowledgeRuntime, ReplySources

logger = logging.getLogger(__name__)

# The "Sources:" heading and each passage's "[n] label: " (labels are short) around the text.
SOURCES_OVERHEAD_TOKENS = 200

_CITATION = re.compile(r"\[(\d{1,2})\]")

INSTRUCTIONS = (
    "You have a knowledge base. The sources below were retrieved from it for the user's latest "
    "message. When the question is about your domain, answer only from these sources and cite "
    "each source you use as [n] right after what it supports. If the sources do not cover the "
    "question, say plainly that your knowledge does not cover it instead of inventing an answer."
)


async def sources_allowance(session: AsyncSession, assistant: Assistant | None) -> int:
    """The most input tokens the sources may add to a reply of `assistant`, for its hold."""
    if assistant is None or not await has_knowledge(session, assistant.id):
        return 0
    return estimate_tokens(INSTRUCTIONS) + SOURCES_MAX_TOKENS + SOURCES_OVERHEAD_TOKENS


def sources_prompt(passages: list[Passage]) -> str:
    lines = [INSTRUCTIONS, "", "Sources:"]
    lines.extend(
        f"[{number}] {passage.label}: {passage.text}"
        for number, passage in enumerate(passages, start=1)
    )
    return "\n".join(lines)


async def knowledge_prompt(
    session: AsyncSession,
    knowledge: KnowledgeRuntime | None,
    reply: AiReply,
    assistant: Assistant | None,
) -> str | None:
    """The sources section of the system prompt for a reply of an assistant with knowledge;
    None for any other reply (or when the question cannot be embedded: the assistant then
    answers without its knowledge rather than not at all)."""
    if knowledge is None or assistant is None or reply.trigger_message_id is None:
        return None
    trigger = await session.get(Message, (reply.trigger_message_id, reply.chat_id))
    if trigger is None or not (trigger.text or "").strip():
        return None
    if not await has_knowledge(session, assistant.id):
        return None
    try:
        found = await retrieve(session, knowledge, assistant, trigger.text or "")
    except LLMError as exc:
        logger.warning("reply %s: knowledge not retrieved: %s", reply.id, exc)
        return None
    knowledge.remember_sources(
        reply.id, ReplySources([p.label for p in found.passages], found.cost_micros)
    )
    return sources_prompt(found.passages) if found.passages else None


def cited_footnotes(text: str, labels: list[str]) -> str:
    """The "Sources:" footnotes of the sources `text` cites, in order of number; "" for none."""
    cited = sorted({int(n) for n in _CITATION.findall(text) if 1 <= int(n) <= len(labels)})
    if not cited:
        return ""
    return "\n\nSources:\n" + "\n".join(f"- [{n}] {labels[n - 1]}" for n in cited)


def finish_with_sources(
    knowledge: KnowledgeRuntime | None, reply_id: int, text: str
) -> tuple[str, int]:
    """The reply's final text with its footnotes, and what its retrieval cost."""
    sources = knowledge.take_sources(reply_id) if knowledge is not None else None
    if sources is None:
        return text, 0
    return text.rstrip() + cited_footnotes(text, sources.labels), sources.cost_micros
