"""BILLING_DAILY_FREE_MICROS set and observed through the API: the day's free credits come on
top of the starting grant, once a day."""

from __future__ import annotations

from tests.billing.conftest import STARTING_GRANT, AppFactory

DAILY_FREE = 5_000


async def test_the_daily_free_credits_are_granted_once_a_day(start_app: AppFactory) -> None:
    async with start_app(billing_daily_free_micros=DAILY_FREE) as app:
        alice = await app.sign_up(5301, "Alice")
        for _ in range(2):
            balance = await alice.ok("GET", "/api/v1/billing/balance")
            assert balance["balance"] == STARTING_GRANT + DAILY_FREE
        page = await alice.ok("GET", "/api/v1/billing/transactions")
    assert sorted(item["amount"] for item in page["items"]) == sorted([STARTING_GRANT, DAILY_FREE])


async def test_without_daily_free_credits_only_the_starting_grant_is_given(
    start_app: AppFactory,
) -> None:
    async with start_app() as app:
        alice = await app.sign_up(5302, "Alice")
        balance = await alice.ok("GET", "/api/v1/billing/balance")
    assert balance["balance"] == STARTING_GRANT
