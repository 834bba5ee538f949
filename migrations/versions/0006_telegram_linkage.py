"""Telegram linkage: groups mirrored as chats, Telegram message ids, reply surfaces.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 15:34:49.641691
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ALTER: a batch rebuild on SQLite would not carry the partial unique index over.
    op.add_column(
        "ai_replies",
        sa.Column("surface", sa.String(length=16), server_default="app", nullable=False),
    )

    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.add_column(sa.Column("telegram_chat_id", sa.BigInteger(), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_chats_telegram_chat_id"), ["telegram_chat_id"]
        )

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("telegram_message_id", sa.BigInteger(), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_messages_chat_id_telegram_message_id"),
            ["chat_id", "telegram_message_id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_messages_chat_id_telegram_message_id"), type_="unique"
        )
        batch_op.drop_column("telegram_message_id")

    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_chats_telegram_chat_id"), type_="unique")
        batch_op.drop_column("telegram_chat_id")

    op.drop_column("ai_replies", "surface")
