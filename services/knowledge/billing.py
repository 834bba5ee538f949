"""Embedding is paid by the assistant's owner, like a reply by its asker: the worst case is held
from their balance when a document is added (refused with 402 when it is not covered), and what
the vendor counted is charged through the ledger when processing ends; the rest is free again."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import PaymentRequired
from llm.catalogue import ModelInfo, cost_micros
from models import BillingAccount, KnowledgeDocument, LedgerKind
from services.billing.config import BillingConfig
from services.billing.ledger import (
    apply_entry,
    find_entry,
    format_credits,
    open_account,
    stage_balance_changed,
)
from services.knowledge.extraction import MAX_CHARACTERS

logger = logging.getLogger(__name__)


def worst_case_micros(model: ModelInfo, characters: int) -> int:
    """No tokenizer yields more tokens than characters."""
    return cost_micros(model, min(characters, MAX_CHARACTERS), 0)


async def check_covered(
    session: AsyncSession, config: BillingConfig, owner_id: int, amount: int
) -> BillingAccount | None:
    """The owner's account, locked, if it covers `amount`; 402 if not (None: billing is off)."""
    if not config.enabled:
        return None
    account = await open_account(session, config, owner_id)
    available = account.balance - account.reserved
    if amount > available:
        raise PaymentRequired(
            f"Insufficient balance: embedding this document may cost up to"
            f" {format_credits(amount)} credits and {format_credits(available)} are available",
            code="insufficient_balance",
            needed_micros=amount,
            available_micros=available,
        )
    return account


async def hold(
    session: AsyncSession,
    config: BillingConfig,
    owner_id: int,
    document: KnowledgeDocument,
    amount: int,
) -> None:
    account = await check_covered(session, config, owner_id, amount)
    if account is None:
        return
    account.reserved += amount
    document.held_micros += amount
    stage_balance_changed(session, account)


async def release(
    session: AsyncSession, config: BillingConfig, owner_id: int, document: KnowledgeDocument
) -> None:
    """The document's hold is freed, nothing charged (it was deleted while processing)."""
    if not config.enabled or not document.held_micros:
        return
    account = await open_account(session, config, owner_id)
    account.reserved -= min(document.held_micros, account.reserved)
    document.held_micros = 0
    await session.flush()
    stage_balance_changed(session, account)


async def settle(
    session: AsyncSession,
    config: BillingConfig,
    owner_id: int,
    document: KnowledgeDocument,
    cost: int,
    key: str,
) -> None:
    """Releases the document's hold and charges `cost` once per `key` (capped at what the owner
    has, never below zero)."""
    if not config.enabled:
        return
    account = await open_account(session, config, owner_id)
    account.reserved -= min(document.held_micros, account.reserved)
    document.held_micros = 0
    charge = min(cost, account.balance - account.reserved)
    if charge < cost:
        logger.warning(
            "document %s cost %s micro-credits; its owner had %s", document.id, cost, charge
        )
    if charge > 0 and await find_entry(session, key) is None:
        await apply_entry(
            session,
            account,
            LedgerKind.USAGE,
            -charge,
            key,
            reason=f"embeddings: {document.title}"[:200],
        )
    await session.flush()
    stage_balance_changed(session, account)
