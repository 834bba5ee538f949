"""Billing: accounts, the ledger, reservations for replies, Telegram Stars payments.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 15:45:57.487724
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _created_at() -> sa.Column[datetime]:
    return sa.Column(
        "created_at",
        sa.DateTime(timezone=True),
        server_default=sa.text("(CURRENT_TIMESTAMP)"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "billing_accounts",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("balance", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("reserved", sa.BigInteger(), server_default="0", nullable=False),
        _created_at(),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_billing_accounts_balance_not_negative")),
        sa.CheckConstraint(
            "reserved <= balance", name=op.f("ck_billing_accounts_reserved_within_balance")
        ),
        sa.CheckConstraint("reserved >= 0", name=op.f("ck_billing_accounts_reserved_not_negative")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_billing_accounts_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_billing_accounts")),
    )
    op.create_table(
        "star_payments",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("telegram_payment_charge_id", sa.String(length=256), nullable=False),
        sa.Column("provider_payment_charge_id", sa.String(length=256), nullable=True),
        sa.Column("package", sa.String(length=32), nullable=False),
        sa.Column("stars", sa.BigInteger(), nullable=False),
        sa.Column("credits_micros", sa.BigInteger(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "paid",
                "refunded",
                name="star_payment_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        _created_at(),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_star_payments_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_star_payments")),
        sa.UniqueConstraint(
            "telegram_payment_charge_id",
            name=op.f("uq_star_payments_telegram_payment_charge_id"),
        ),
    )
    op.create_index(op.f("ix_star_payments_user_id"), "star_payments", ["user_id"])
    op.create_table(
        "billing_holds",
        sa.Column("reply_id", ID, autoincrement=False, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        _created_at(),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_billing_holds_amount_not_negative")),
        sa.ForeignKeyConstraint(
            ["reply_id"], ["ai_replies.id"], name=op.f("fk_billing_holds_reply_id_ai_replies")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_billing_holds_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("reply_id", name=op.f("pk_billing_holds")),
    )
    op.create_index(op.f("ix_billing_holds_user_id"), "billing_holds", ["user_id"])
    op.create_table(
        "ledger_entries",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "grant",
                "deposit",
                "usage",
                "refund",
                "adjustment",
                name="ledger_kind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("reply_id", ID, nullable=True),
        sa.Column("payment_id", ID, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        _created_at(),
        sa.CheckConstraint(
            "balance_after >= 0", name=op.f("ck_ledger_entries_balance_after_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["star_payments.id"],
            name=op.f("fk_ledger_entries_payment_id_star_payments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["reply_id"],
            ["ai_replies.id"],
            name=op.f("fk_ledger_entries_reply_id_ai_replies"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_ledger_entries_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_ledger_entries_idempotency_key")),
    )
    op.create_index("ix_ledger_entries_user_id_id", "ledger_entries", ["user_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_user_id_id", table_name="ledger_entries")
    op.drop_table("ledger_entries")
    op.drop_index(op.f("ix_billing_holds_user_id"), table_name="billing_holds")
    op.drop_table("billing_holds")
    op.drop_index(op.f("ix_star_payments_user_id"), table_name="star_payments")
    op.drop_table("star_payments")
    op.drop_table("billing_accounts")
