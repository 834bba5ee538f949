"""Billing: every user's balance in micro-credits, the ledger that explains it, what an AI reply
may cost, Telegram Stars payments and refunds, and usage reports.

`config` (BillingConfig), `ledger` (accounts, balances, grants, entries), `quota` (what a reply
may cost: the ledger's or a daily token allowance), `stars` (invoices, payments, refunds),
`reports` (usage per user and model).
"""
