"""The AI sees, hears, speaks and draws: transcripts on messages, voice replies per chat, and
what a reply job used besides tokens (audio transcribed, speech spoken, images drawn), priced.

A transcription asked for on its own is a job of kind 'transcription': it does not hold the
chat's one active reply, but one message is transcribed by one job at a time.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE_REPLY_INDEX = "uq_ai_replies_active_chat"
ACTIVE_TRANSCRIPTION_INDEX = "uq_ai_replies_active_transcription"
ACTIVE = "status IN ('queued', 'running')"


def _recreate_active_index(where: str) -> None:
    op.execute(f"DROP INDEX IF EXISTS {ACTIVE_REPLY_INDEX}")
    op.execute(f"CREATE UNIQUE INDEX {ACTIVE_REPLY_INDEX} ON ai_replies (chat_id) WHERE {where}")


def upgrade() -> None:
    op.add_column("messages", sa.Column("transcript", sa.Text(), nullable=True))
    op.add_column(
        "chats",
        sa.Column("ai_voice_replies", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    job_kind = sa.Enum(
        "text",
        "image",
        "transcription",
        name="ai_job_kind",
        native_enum=False,
        create_constraint=True,
        length=16,
    )
    op.add_column("ai_replies", sa.Column("kind", job_kind, nullable=False, server_default="text"))
    for name, kind in (
        ("audio_seconds", sa.Float()),
        ("speech_characters", sa.Integer()),
        ("images_generated", sa.Integer()),
    ):
        op.add_column("ai_replies", sa.Column(name, kind, nullable=False, server_default="0"))
    _recreate_active_index(f"{ACTIVE} AND kind <> 'transcription'")
    op.execute(
        f"CREATE UNIQUE INDEX {ACTIVE_TRANSCRIPTION_INDEX} ON ai_replies (trigger_message_id)"
        f" WHERE {ACTIVE} AND kind = 'transcription'"
    )


def downgrade() -> None:
    op.execute(f"DROP INDEX IF EXISTS {ACTIVE_TRANSCRIPTION_INDEX}")
    op.execute("DELETE FROM ai_replies WHERE kind = 'transcription'")
    _recreate_active_index(ACTIVE)
    # SQLite (3.35+) drops an unindexed column in place, as PostgreSQL does.
    for name in ("images_generated", "speech_characters", "audio_seconds", "kind"):
        op.drop_column("ai_replies", name)
    op.drop_column("chats", "ai_voice_replies")
    op.drop_column("messages", "transcript")
