"""Telegram Stars: invoices, the payment through the real aiogram Dispatcher against the fake
Bot API server, and refunds."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.invoices import bot_api
from core.broker import MemoryBroker
from core.db import unit_of_work
from core.errors import ServiceUnavailable
from models import AiReply, PaymentStatus, StarPayment
from services.billing.config import BillingConfig
from services.billing.quota import LedgerQuota
from services.billing.stars import new_invoice, record_star_payment
from services.users import user_by_telegram_id
from tests.ai.helpers import socket_of
from tests.billing.conftest import (
    ADMIN_TELEGRAM_ID,
    STARTING_GRANT,
    AppFactory,
    pricey_worst_case,
)
from tests.billing.helpers import Sessionmaker, ledger_state, new_reply, user_of
from tests.conftest import make_settings
from tests.support.fake_telegram.fake import FakeTelegram, RecordedCall
from tests.support.fake_telegram.updates import (
    TgUser,
    pre_checkout_query,
    private_text,
    successful_payment,
    tg_user,
)

ALICE = tg_user(7301, "Alice", "alice")
BOB = tg_user(7302, "Bob", "bob")
SMALL_STARS, SMALL_CREDITS = 50, 1_000_000


def _sent_to(user: TgUser) -> Any:
    return lambda call: call.params.get("chat_id") == user.id


async def _invoice_payload(telegram: FakeTelegram, user: Any, package: str = "small") -> str:
    body = await user.ok("POST", "/api/v1/billing/invoice", json={"package": package})
    payload: str = telegram.invoice_links[body["invoice_link"]]["payload"]
    return payload


async def _answer_to(telegram: FakeTelegram, update: dict[str, Any]) -> RecordedCall:
    query_id = update["pre_checkout_query"]["id"]
    return await telegram.wait_for_call(
        "answerPreCheckoutQuery", lambda call: call.params["pre_checkout_query_id"] == query_id
    )


async def test_an_invoice_link_is_created_for_a_package(
    start_app: AppFactory, fake_telegram: FakeTelegram
) -> None:
    async with start_app() as app:  # the bot runs elsewhere: a client of its own calls Telegram
        alice = await app.sign_up(ALICE.id, "Alice")
        body = await alice.ok("POST", "/api/v1/billing/invoice", json={"package": "large"})
        unknown = await alice.post("/api/v1/billing/invoice", json={"package": "huge"})
    assert body["package"] == {
        "id": "large",
        "title": "6 credits",
        "stars": 250,
        "credits": 6_000_000,
    }
    call = await fake_telegram.wait_for_call("createInvoiceLink")
    assert call.params["currency"] == "XTR"
    assert call.params["prices"] == [{"label": "6 credits", "amount": 250}]
    assert call.params["title"] == "6 credits"
    assert call.params["description"] == "6 credits for AI replies"
    assert not call.params.get("provider_token")
    assert call.params["payload"].startswith(f"large:{alice.id}:250:6000000:")
    assert fake_telegram.invoice_links[body["invoice_link"]] == call.params
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_package")
    assert len(fake_telegram.calls_to("createInvoiceLink")) == 1


async def test_no_invoices_while_billing_is_off(
    start_app: AppFactory, fake_telegram: FakeTelegram
) -> None:
    async with start_app(billing_enabled=False) as app:
        alice = await app.sign_up(ALICE.id, "Alice")
        refused = await alice.post("/api/v1/billing/invoice", json={"package": "small"})
    assert (refused.status_code, refused.json()["code"]) == (503, "billing_disabled")
    assert fake_telegram.calls_to("createInvoiceLink") == []


async def test_without_a_bot_token_the_bot_api_is_unavailable(
    billing_database_url: str, tmp_dir: Any
) -> None:
    settings = make_settings(billing_database_url, tmp_dir, bot_token=None)
    with pytest.raises(ServiceUnavailable) as refused:
        async with bot_api(settings):
            pass
    assert refused.value.code == "bot_not_configured"


async def test_topup_offers_the_packages_as_invoice_links(
    start_app: AppFactory, fake_telegram: FakeTelegram
) -> None:
    async with start_app(bot_mode="polling") as app:
        alice = await app.sign_up(ALICE.id, "Alice")
        fake_telegram.push_update(private_text(ALICE, "/topup"))
        sent = await fake_telegram.wait_for_call("sendMessage", _sent_to(ALICE))
    assert sent.params["text"].startswith("Your balance: 0.1 credits.")
    buttons = [row[0] for row in sent.params["reply_markup"]["inline_keyboard"]]
    assert [button["text"] for button in buttons] == ["1 credit — 50 ⭐", "6 credits — 250 ⭐"]
    invoices = [fake_telegram.invoice_links[button["url"]] for button in buttons]
    assert [invoice["prices"] for invoice in invoices] == [
        [{"label": "1 credit", "amount": 50}],
        [{"label": "6 credits", "amount": 250}],
    ]
    assert all(invoice["currency"] == "XTR" for invoice in invoices)
    assert all(f":{alice.id}:" in invoice["payload"] for invoice in invoices)


async def test_a_stars_payment_is_credited_exactly_once(
    start_app: AppFactory, fake_telegram: FakeTelegram, billing_sessionmaker: Sessionmaker
) -> None:
    async with start_app(bot_mode="polling") as app:
        alice = await app.sign_up(ALICE.id, "Alice")
        payload = await _invoice_payload(fake_telegram, alice)

        query = pre_checkout_query(ALICE, payload, SMALL_STARS)
        fake_telegram.push_update(query)
        answer = await _answer_to(fake_telegram, query)
        assert answer.params["ok"] is True

        paid = successful_payment(ALICE, payload, SMALL_STARS, "charge-once")
        async with socket_of(app.server, alice) as ws:
            fake_telegram.push_update(paid)
            changed = await ws.wait_for("balance_changed")
            thanks = await fake_telegram.wait_for_call("sendMessage", _sent_to(ALICE))
        assert changed == {
            "type": "balance_changed",
            "balance": STARTING_GRANT + SMALL_CREDITS,
            "available": STARTING_GRANT + SMALL_CREDITS,
            "currency": "credits",
        }
        assert thanks.params["text"] == "Thank you! Your balance is now 1.1 credits (+1)."

        # Telegram delivers the same update again: the Dispatcher handles it, nothing changes.
        assert app.context.telegram is not None
        await app.context.telegram.feed(paid)
        balance = await alice.ok("GET", "/api/v1/billing/balance")
        assert balance["balance"] == STARTING_GRANT + SMALL_CREDITS
        assert len(fake_telegram.calls_to("sendMessage")) == 1

    async with billing_sessionmaker() as session:
        [payment] = await session.scalars(select(StarPayment))
    assert (payment.telegram_payment_charge_id, payment.user_id) == ("charge-once", alice.id)
    assert (payment.stars, payment.credits_micros, payment.package) == (50, SMALL_CREDITS, "small")
    state = await ledger_state(billing_sessionmaker, alice.id)
    assert [kind.value for kind in state.kinds] == ["grant", "deposit"]
    assert state.balance == state.entries_sum


async def test_pre_checkout_refuses_what_the_server_did_not_offer(
    start_app: AppFactory, fake_telegram: FakeTelegram, billing_sessionmaker: Sessionmaker
) -> None:
    async with start_app(bot_mode="polling") as app:
        alice = await app.sign_up(ALICE.id, "Alice")
        payload = await _invoice_payload(fake_telegram, alice)
        tampered = payload.replace(f":{SMALL_CREDITS}:", ":900000000:")
        refusals = {
            "not issued by this bot": pre_checkout_query(ALICE, tampered, SMALL_STARS),
            "issued to someone else": pre_checkout_query(BOB, payload, SMALL_STARS),
            "amount paid": pre_checkout_query(ALICE, payload, 1),
            "amount paid is not": pre_checkout_query(ALICE, payload, SMALL_STARS, currency="USD"),
        }
        for query in refusals.values():
            fake_telegram.push_update(query)
        for reason, query in refusals.items():
            answer = await _answer_to(fake_telegram, query)
            assert answer.params["ok"] is False
            assert reason in answer.params["error_message"]

        # A payment Telegram reports for a forged invoice is not credited, and the payer hears.
        assert app.context.telegram is not None
        await app.context.telegram.feed(successful_payment(ALICE, tampered, 50, "charge-forged"))
        warning = await fake_telegram.wait_for_call("sendMessage", _sent_to(ALICE))
        assert "charge-forged" in warning.params["text"]
    async with billing_sessionmaker() as session:
        assert list(await session.scalars(select(StarPayment))) == []


async def test_an_offer_that_changed_since_the_invoice_is_refused_at_pre_checkout(
    start_app: AppFactory, fake_telegram: FakeTelegram
) -> None:
    async with start_app() as app:
        alice = await app.sign_up(ALICE.id, "Alice")
        payload = await _invoice_payload(fake_telegram, alice)
    packages = '[{"id":"small","stars":60,"credits_micros":1000000,"title":"1 credit"}]'
    async with start_app(bot_mode="polling", billing_packages=packages):
        query = pre_checkout_query(ALICE, payload, SMALL_STARS)
        fake_telegram.push_update(query)
        answer = await _answer_to(fake_telegram, query)
    assert answer.params["ok"] is False
    assert "changed" in answer.params["error_message"]


async def _pay(
    sessionmaker: Sessionmaker, config: BillingConfig, telegram_id: int, charge_id: str
) -> None:
    async with unit_of_work(sessionmaker, MemoryBroker()) as session:
        user = await user_by_telegram_id(session, telegram_id)
        invoice = new_invoice(config, "small", user)
        await record_star_payment(
            session,
            config,
            user,
            payload=invoice.payload,
            currency="XTR",
            total_amount=invoice.package.stars,
            telegram_payment_charge_id=charge_id,
            provider_payment_charge_id="",
        )


async def test_an_admin_refunds_a_payment(
    start_app: AppFactory,
    fake_telegram: FakeTelegram,
    billing_sessionmaker: Sessionmaker,
    config: BillingConfig,
) -> None:
    async with start_app() as app:
        alice = await app.sign_up(ALICE.id, "Alice")
        admin = await app.sign_up(ADMIN_TELEGRAM_ID, "Admin")
        await _pay(billing_sessionmaker, config, ALICE.id, "charge-refund")
        path = "/api/v1/billing/admin/refund"
        body = {"telegram_payment_charge_id": "charge-refund"}

        by_alice = await alice.post(path, json=body)
        assert (by_alice.status_code, by_alice.json()["code"]) == (403, "admin_only")

        async with socket_of(app.server, alice) as ws:
            refunded = await admin.ok("POST", path, json=body)
            changed = await ws.wait_for("balance_changed")
        assert refunded["payment"]["status"] == "refunded"
        assert refunded["payment"]["refunded_at"] is not None
        assert refunded["balance"]["balance"] == changed["balance"] == STARTING_GRANT

        again = await admin.post(path, json=body)
        assert (again.status_code, again.json()["code"]) == (409, "already_refunded")
        unknown = await admin.post(path, json={"telegram_payment_charge_id": "no-such-charge"})
        assert (unknown.status_code, unknown.json()["code"]) == (404, "payment_not_found")

    [call] = fake_telegram.calls_to("refundStarPayment")
    assert call.params["user_id"] == ALICE.id
    assert call.params["telegram_payment_charge_id"] == "charge-refund"
    state = await ledger_state(billing_sessionmaker, alice.id)
    assert [kind.value for kind in state.kinds] == ["grant", "deposit", "refund"]
    assert state.balance == state.entries_sum == STARTING_GRANT


async def test_a_refund_of_spent_credits_is_refused_without_asking_telegram(
    start_app: AppFactory,
    fake_telegram: FakeTelegram,
    billing_sessionmaker: Sessionmaker,
    config: BillingConfig,
) -> None:
    async with start_app() as app:
        await app.sign_up(ALICE.id, "Alice")
        admin = await app.sign_up(ADMIN_TELEGRAM_ID, "Admin")
        await _pay(billing_sessionmaker, config, ALICE.id, "charge-spent")
        # Alice spends most of her credits on a reply.
        alice = await user_of(billing_sessionmaker, ALICE.id)
        reply = await new_reply(billing_sessionmaker, alice)
        quota = LedgerQuota(config)
        async with unit_of_work(billing_sessionmaker, MemoryBroker()) as session:
            row = await session.get(AiReply, reply.id)
            assert row is not None
            await quota.reserve(session, row, pricey_worst_case(10, row.max_tokens))
        async with unit_of_work(billing_sessionmaker, MemoryBroker()) as session:
            row = await session.get(AiReply, reply.id)
            assert row is not None
            row.cost_micros = STARTING_GRANT + SMALL_CREDITS // 2
            await quota.settle(session, row)

        refused = await admin.post(
            "/api/v1/billing/admin/refund", json={"telegram_payment_charge_id": "charge-spent"}
        )
    assert refused.status_code == 409
    body = refused.json()
    assert body["code"] == "refund_exceeds_balance"
    assert "spent" in body["error"]
    assert (body["needed_micros"], body["available_micros"]) == (SMALL_CREDITS, SMALL_CREDITS // 2)
    assert fake_telegram.calls_to("refundStarPayment") == []
    async with billing_sessionmaker() as session:
        [payment] = await session.scalars(select(StarPayment))
    assert payment.status == PaymentStatus.PAID
    state = await ledger_state(billing_sessionmaker, alice.id)
    assert state.balance == state.entries_sum == SMALL_CREDITS // 2


async def test_a_refund_telegram_refuses_changes_nothing(
    start_app: AppFactory,
    fake_telegram: FakeTelegram,
    billing_sessionmaker: Sessionmaker,
    config: BillingConfig,
) -> None:
    fake_telegram.fail_next(
        "refundStarPayment", error_code=400, description="Bad Request: CHARGE_NOT_FOUND"
    )
    async with start_app() as app:
        alice = await app.sign_up(ALICE.id, "Alice")
        admin = await app.sign_up(ADMIN_TELEGRAM_ID, "Admin")
        await _pay(billing_sessionmaker, config, ALICE.id, "charge-unknown")
        refused = await admin.post(
            "/api/v1/billing/admin/refund", json={"telegram_payment_charge_id": "charge-unknown"}
        )
    assert (refused.status_code, refused.json()["code"]) == (409, "refund_refused")
    assert "CHARGE_NOT_FOUND" in refused.json()["error"]
    async with billing_sessionmaker() as session:
        [payment] = await session.scalars(select(StarPayment))
    assert payment.status == PaymentStatus.PAID
    state = await ledger_state(billing_sessionmaker, alice.id)
    assert [kind.value for kind in state.kinds] == ["grant", "deposit"]
    assert state.balance == STARTING_GRANT + SMALL_CREDITS
