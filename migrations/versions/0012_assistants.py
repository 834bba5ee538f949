"""Assistants: custom AIs with their own instructions, model and knowledge; their Telegram bots;
ratings of AI replies. Chats and reply jobs name the assistant that answers (None: the built-in
AI).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 20:05:26.973269
"""

from collections.abc import Sequence
from contextlib import nullcontext

import sqlalchemy as sa
from alembic import op

from migrations.sqlite import foreign_keys_off

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NOW = sa.text("(CURRENT_TIMESTAMP)")


def _id(name: str, *, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, ID, nullable=nullable)


def _pk() -> sa.Column[int]:
    return sa.Column("id", ID, autoincrement=True, nullable=False, primary_key=True)


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
    ]


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}", ondelete=ondelete
    )


def _restore_active_reply_indexes() -> None:
    """A SQLite batch rebuild of ai_replies does not carry its partial unique indexes over."""
    for name, column, kind in (
        ("uq_ai_replies_active_chat", "chat_id", "kind <> 'transcription'"),
        ("uq_ai_replies_active_transcription", "trigger_message_id", "kind = 'transcription'"),
    ):
        op.execute(f"DROP INDEX IF EXISTS {name}")
        op.execute(
            f"CREATE UNIQUE INDEX {name} ON ai_replies ({column})"
            f" WHERE status IN ('queued', 'running') AND {kind}"
        )


def upgrade() -> None:
    op.create_table(
        "assistants",
        _pk(),
        _id("owner_id"),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        _id("avatar_media_id", nullable=True),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("model", sa.String(128), nullable=True),
        sa.Column("greeting", sa.Text(), nullable=True),
        sa.Column("temperature", sa.Float(), nullable=True),
        sa.Column("max_reply_tokens", sa.Integer(), nullable=True),
        sa.Column(
            "visibility", _enum("assistant_visibility", "private", "link", "public"), nullable=False
        ),
        sa.Column("share_token", sa.String(64), nullable=False),
        sa.Column("uses", sa.Integer(), server_default="0", nullable=False),
        sa.Column("knowledge_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        _fk("assistants", "avatar_media_id", "media", "SET NULL"),
        _fk("assistants", "owner_id", "users", "CASCADE"),
        sa.UniqueConstraint("share_token", name="uq_assistants_share_token"),
    )
    op.create_index("ix_assistants_owner_id", "assistants", ["owner_id"])
    op.create_index("ix_assistants_visibility_uses", "assistants", ["visibility", "uses"])

    op.create_table(
        "assistant_bots",
        _pk(),
        _id("assistant_id"),
        _id("telegram_bot_id"),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("token_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("webhook_secret", sa.String(64), nullable=False),
        *_timestamps(),
        _fk("assistant_bots", "assistant_id", "assistants", "CASCADE"),
        sa.UniqueConstraint("assistant_id", name="uq_assistant_bots_assistant_id"),
        sa.UniqueConstraint("telegram_bot_id", name="uq_assistant_bots_telegram_bot_id"),
    )

    op.create_table(
        "knowledge_documents",
        _pk(),
        _id("assistant_id"),
        sa.Column("title", sa.String(255), nullable=False),
        _id("media_id", nullable=True),
        sa.Column("source_text", sa.Text(), nullable=True),
        sa.Column(
            "status", _enum("document_status", "processing", "ready", "failed"), nullable=False
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("chunks", sa.Integer(), server_default="0", nullable=False),
        sa.Column("embedded_chunks", sa.Integer(), server_default="0", nullable=False),
        sa.Column("embedding_model", sa.String(128), nullable=True),
        sa.Column("cost_micros", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("source_format", sa.String(16), nullable=False),
        sa.Column("held_micros", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("claimed_by", sa.String(32), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        *_timestamps(),
        _fk("knowledge_documents", "assistant_id", "assistants", "CASCADE"),
        _fk("knowledge_documents", "media_id", "media", "SET NULL"),
    )
    op.create_index("ix_knowledge_documents_assistant_id", "knowledge_documents", ["assistant_id"])

    op.create_table(
        "knowledge_chunks",
        _pk(),
        _id("document_id"),
        _id("assistant_id"),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("section", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        _fk("knowledge_chunks", "assistant_id", "assistants", "CASCADE"),
        _fk("knowledge_chunks", "document_id", "knowledge_documents", "CASCADE"),
        sa.UniqueConstraint(
            "document_id", "position", name="uq_knowledge_chunks_document_id_position"
        ),
    )
    op.create_index("ix_knowledge_chunks_assistant_id", "knowledge_chunks", ["assistant_id"])

    op.create_table(
        "reply_ratings",
        _pk(),
        _id("message_id"),
        _id("chat_id"),
        _id("user_id"),
        _id("assistant_id", nullable=True),
        sa.Column("value", sa.SmallInteger(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        _fk("reply_ratings", "assistant_id", "assistants", "SET NULL"),
        _fk("reply_ratings", "chat_id", "chats", "CASCADE"),
        _fk("reply_ratings", "user_id", "users", "CASCADE"),
        sa.ForeignKeyConstraint(
            ["message_id", "chat_id"],
            ["messages.id", "messages.chat_id"],
            name="fk_reply_ratings_message_id_messages",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("message_id", "user_id", name="uq_reply_ratings_message_id_user_id"),
    )
    op.create_index("ix_reply_ratings_assistant_id", "reply_ratings", ["assistant_id"])

    sqlite = op.get_bind().dialect.name == "sqlite"
    with foreign_keys_off() if sqlite else nullcontext():
        for table in ("ai_replies", "chats"):
            with op.batch_alter_table(table) as batch:
                batch.add_column(_id("assistant_id", nullable=True))
                batch.create_foreign_key(
                    f"fk_{table}_assistant_id_assistants",
                    "assistants",
                    ["assistant_id"],
                    ["id"],
                    ondelete="SET NULL",
                )
                batch.create_index(f"ix_{table}_assistant_id", ["assistant_id"])
        if sqlite:
            _restore_active_reply_indexes()
    if not sqlite:
        # Stored, so that ranking the matches reads it instead of parsing every text again.
        op.execute(
            "ALTER TABLE knowledge_chunks ADD COLUMN text_search tsvector"
            " GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, text)) STORED"
        )
        op.execute(
            "CREATE INDEX ix_knowledge_chunks_text_fts ON knowledge_chunks USING gin (text_search)"
        )
    else:
        for statement in SQLITE_FTS:
            op.execute(statement)


# SQLite's full-text index of chunks: an FTS5 table over knowledge_chunks' own rows (external
# content: the text is stored once), kept in sync by triggers.
SQLITE_FTS = (
    "CREATE VIRTUAL TABLE knowledge_chunks_fts USING fts5("
    "text, assistant_id UNINDEXED, content='knowledge_chunks', content_rowid='id')",
    "CREATE TRIGGER knowledge_chunks_fts_insert AFTER INSERT ON knowledge_chunks BEGIN"
    " INSERT INTO knowledge_chunks_fts (rowid, text, assistant_id)"
    " VALUES (new.id, new.text, new.assistant_id); END",
    "CREATE TRIGGER knowledge_chunks_fts_delete AFTER DELETE ON knowledge_chunks BEGIN"
    " INSERT INTO knowledge_chunks_fts (knowledge_chunks_fts, rowid, text, assistant_id)"
    " VALUES ('delete', old.id, old.text, old.assistant_id); END",
    "CREATE TRIGGER knowledge_chunks_fts_update AFTER UPDATE OF text ON knowledge_chunks BEGIN"
    " INSERT INTO knowledge_chunks_fts (knowledge_chunks_fts, rowid, text, assistant_id)"
    " VALUES ('delete', old.id, old.text, old.assistant_id);"
    " INSERT INTO knowledge_chunks_fts (rowid, text, assistant_id)"
    " VALUES (new.id, new.text, new.assistant_id); END",
)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with foreign_keys_off() if sqlite else nullcontext():
        for table in ("chats", "ai_replies"):
            op.drop_index(f"ix_{table}_assistant_id", table_name=table)
            with op.batch_alter_table(table) as batch:
                batch.drop_column("assistant_id")
        if sqlite:
            _restore_active_reply_indexes()
    if sqlite:
        op.execute("DROP TABLE knowledge_chunks_fts")  # its triggers go with knowledge_chunks
    for table in ("reply_ratings", "knowledge_chunks", "knowledge_documents", "assistant_bots"):
        op.drop_table(table)
    op.drop_table("assistants")
