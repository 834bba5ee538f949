"""Partitioned history: `messages` and `chat_events` hash-partitioned by chat (PostgreSQL).

Every hot read and write of history names one chat, so each lands in one partition. A
partitioned table's keys must hold its partition key, and so must what references it:
- `messages`: primary key (id, chat_id); a client's id for a message is unique per (chat,
  sender), no longer per sender alone; replies, reactions, attachments and AI replies reference
  a message by (id, chat_id), and reactions and attachments carry the chat for that.
- `chat_events`: its key (chat_id, seq) holds the chat already.
- `post_message` looks an earlier attempt up in the chat and writes the attachments' chat.

The tables are rebuilt: new partitioned tables, rows copied (ids, seqs and the id sequence
kept), the old ones dropped, constraints and indexes made anew. Writers wait for it (the tables
are locked); readers of history too, once the old tables are dropped.

SQLite has no partitions; it takes the same keys, columns and constraints, so that both
backends keep the same rules. See docs/SCALING.md, "Partitioned history".

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic.script import ScriptDirectory

from migrations.sqlite import foreign_keys_off

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Partitions per table. A power of two, so that a later split (modulus 32: each partition into
# two) moves only the rows of the partition split. 16 keeps each partition's indexes a sixteenth
# of the whole at tens of millions of messages, while planning and maintenance (autovacuum,
# per-partition statistics) stay cheap, and a query that does not name a chat (search across a
# user's chats) probes only 16 indexes.
PARTITIONS = 16

MESSAGE_KEY = "(id, chat_id)"
# The foreign keys to a message: (referencing table, constraint, its message column, ON DELETE
# now, ON DELETE before). Now they name the message's chat, the referencing row's `chat_id`.
# Messages are deleted only with their chat, which takes every row that references them with it,
# so nothing is to be nulled (nor could SQLite null one column of a composite key).
REFERENCES = (
    (
        "message_reactions",
        "fk_message_reactions_message_id_messages",
        "message_id",
        "CASCADE",
        "CASCADE",
    ),
    ("message_media", "fk_message_media_message_id_messages", "message_id", "CASCADE", "CASCADE"),
    (
        "ai_replies",
        "fk_ai_replies_trigger_message_id_messages",
        "trigger_message_id",
        None,
        "SET NULL",
    ),
    ("ai_replies", "fk_ai_replies_reply_message_id_messages", "reply_message_id", None, "SET NULL"),
    ("messages", "fk_messages_reply_to_id_messages", "reply_to_id", None, "SET NULL"),
)
CARRY_CHAT = ("message_reactions", "message_media")

MESSAGES_CONSTRAINTS = """
ALTER TABLE messages
    ADD CONSTRAINT uq_messages_chat_id_seq UNIQUE (chat_id, seq),
    ADD CONSTRAINT uq_messages_chat_id_telegram_message_id UNIQUE (chat_id, telegram_message_id),
    ADD CONSTRAINT fk_messages_chat_id_chats FOREIGN KEY (chat_id)
        REFERENCES chats (id) ON DELETE CASCADE,
    ADD CONSTRAINT fk_messages_sender_id_users FOREIGN KEY (sender_id)
        REFERENCES users (id) ON DELETE SET NULL,
    ADD CONSTRAINT fk_messages_forward_from_user_id_users FOREIGN KEY (forward_from_user_id)
        REFERENCES users (id) ON DELETE SET NULL,
    ADD CONSTRAINT fk_messages_forward_from_chat_id_chats FOREIGN KEY (forward_from_chat_id)
        REFERENCES chats (id) ON DELETE SET NULL,
    ADD CONSTRAINT fk_messages_pinned_by_users FOREIGN KEY (pinned_by)
        REFERENCES users (id) ON DELETE SET NULL
"""
MESSAGES_INDEXES = (
    "CREATE INDEX ix_messages_chat_id_id ON messages (chat_id, id)",
    "CREATE INDEX ix_messages_text_fts ON messages"
    " USING gin (to_tsvector('simple'::regconfig, coalesce(text, '')))",
)
CHAT_EVENTS_CONSTRAINTS = """
ALTER TABLE chat_events
    ADD CONSTRAINT pk_chat_events PRIMARY KEY (chat_id, seq),
    ADD CONSTRAINT fk_chat_events_chat_id_chats FOREIGN KEY (chat_id)
        REFERENCES chats (id) ON DELETE CASCADE
"""

# What 0009's `post_message` does, an earlier attempt looked up in the chat (one partition)
# and the attachments written with the chat. A retry in another chat is another message.
POST_MESSAGE = """
CREATE OR REPLACE FUNCTION post_message(
    p_chat_id bigint,
    p_sender_id bigint,
    p_type text,
    p_text text,
    p_reply_to_id bigint,
    p_client_msg_id text,
    p_forward_from_user_id bigint,
    p_forward_from_chat_id bigint,
    p_telegram_message_id bigint,
    p_now timestamptz,
    p_view jsonb,
    p_media_ids bigint[],
    p_media_from bigint,
    p_unless_ai_answers boolean
) RETURNS TABLE (
    outcome text,
    message_id bigint,
    message_seq bigint,
    chat_id bigint,
    chat_type text,
    ai_mode text,
    member_ids bigint[]
)
LANGUAGE plpgsql
AS $$
DECLARE
    v_type text;
    v_mode text;
    v_id bigint;
    v_seq bigint;
BEGIN
    SELECT c.type, c.ai_mode INTO v_type, v_mode
    FROM chats c JOIN chat_members m ON m.chat_id = c.id
    WHERE c.id = p_chat_id AND m.user_id = p_sender_id AND c.is_active;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_member', NULL::bigint, NULL::bigint, p_chat_id,
            NULL::text, NULL::text, NULL::bigint[];
        RETURN;
    END IF;
    IF p_unless_ai_answers AND (v_type = 'ai' OR (v_type = 'group' AND v_mode = 'always')) THEN
        RETURN QUERY SELECT 'ai_answers', NULL::bigint, NULL::bigint, p_chat_id, v_type, v_mode,
            NULL::bigint[];
        RETURN;
    END IF;
    IF p_reply_to_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM messages r WHERE r.id = p_reply_to_id AND r.chat_id = p_chat_id
    ) THEN
        RETURN QUERY SELECT 'bad_reply_to', NULL::bigint, NULL::bigint, p_chat_id, v_type,
            v_mode, NULL::bigint[];
        RETURN;
    END IF;
    IF p_client_msg_id IS NOT NULL THEN
        SELECT o.id, o.seq INTO v_id, v_seq FROM messages o
        WHERE o.chat_id = p_chat_id AND o.sender_id = p_sender_id
            AND o.client_msg_id = p_client_msg_id;
        IF FOUND THEN
            RETURN QUERY SELECT 'duplicate', v_id, v_seq, p_chat_id, v_type, v_mode,
                NULL::bigint[];
            RETURN;
        END IF;
    END IF;
    -- The chat's row lock, held to commit: writers to one chat queue here, in commit order.
    UPDATE chats SET last_seq = last_seq + 1 WHERE id = p_chat_id RETURNING last_seq INTO v_seq;
    INSERT INTO messages (
        chat_id, sender_id, seq, type, text, reply_to_id, client_msg_id,
        forward_from_user_id, forward_from_chat_id, telegram_message_id, created_at, updated_at
    ) VALUES (
        p_chat_id, p_sender_id, v_seq, p_type, p_text, p_reply_to_id, p_client_msg_id,
        p_forward_from_user_id, p_forward_from_chat_id, p_telegram_message_id, p_now, p_now
    )
    ON CONFLICT ON CONSTRAINT uq_messages_chat_id_sender_id_client_msg_id DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        -- A concurrent attempt with this client_msg_id committed while this one waited for the
        -- chat: give the seq back (the row is still ours, nobody took a later one).
        UPDATE chats SET last_seq = last_seq - 1 WHERE id = p_chat_id;
        SELECT o.id, o.seq INTO v_id, v_seq FROM messages o
        WHERE o.chat_id = p_chat_id AND o.sender_id = p_sender_id
            AND o.client_msg_id = p_client_msg_id;
        RETURN QUERY SELECT 'duplicate', v_id, v_seq, p_chat_id, v_type, v_mode, NULL::bigint[];
        RETURN;
    END IF;
    UPDATE chats SET last_message_id = v_id, last_activity_at = p_now WHERE id = p_chat_id;
    IF p_media_ids IS NOT NULL THEN
        INSERT INTO message_media (message_id, chat_id, media_id, position)
        SELECT v_id, p_chat_id, item.media_id, item.position - 1
        FROM unnest(p_media_ids) WITH ORDINALITY AS item(media_id, position);
    ELSIF p_media_from IS NOT NULL THEN
        INSERT INTO message_media (message_id, chat_id, media_id, position)
        SELECT v_id, p_chat_id, source.media_id, source.position
        FROM message_media source WHERE source.message_id = p_media_from;
    END IF;
    INSERT INTO chat_events (chat_id, seq, type, payload, created_at)
    VALUES (
        p_chat_id, v_seq, 'new_message',
        jsonb_build_object('message', p_view || jsonb_build_object('id', v_id, 'seq', v_seq)),
        p_now
    );
    RETURN QUERY SELECT 'sent', v_id, v_seq, p_chat_id, v_type, v_mode,
        ARRAY(SELECT m.user_id FROM chat_members m WHERE m.chat_id = p_chat_id);
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _downgrade_postgresql()
    else:
        _downgrade_sqlite()


def _partition_names(table: str) -> list[str]:
    width = len(str(PARTITIONS - 1))
    return [f"{table}_p{index:0{width}d}" for index in range(PARTITIONS)]


def _rebuild(table: str, *, partitioned: bool) -> None:
    """`table` again, with its rows, as a hash-partitioned table (or a plain one): columns,
    defaults and checks as they were; keys, foreign keys and indexes are the caller's."""
    op.execute(
        f"CREATE TABLE {table}_rebuilt (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        + (" PARTITION BY HASH (chat_id)" if partitioned else "")
    )
    if partitioned:
        for index, name in enumerate(_partition_names(table)):
            op.execute(
                f"CREATE TABLE {name} PARTITION OF {table}_rebuilt"
                f" FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {index})"
            )
    op.execute(f"INSERT INTO {table}_rebuilt SELECT * FROM {table}")  # noqa: S608
    if table == "messages":  # the id sequence outlives the table it belonged to
        op.execute("ALTER SEQUENCE messages_id_seq OWNED BY NONE")
    op.execute(f"DROP TABLE {table}")
    op.execute(f"ALTER TABLE {table}_rebuilt RENAME TO {table}")
    if table == "messages":
        op.execute("ALTER SEQUENCE messages_id_seq OWNED BY messages.id")


def _drop_references() -> None:
    """The foreign keys to `messages` from other tables (its own go with it)."""
    for table, constraint, *_ in REFERENCES:
        if table != "messages":
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {constraint}")


def _upgrade_postgresql() -> None:
    # No write may land between a copy and the drop of what it copied.
    op.execute(
        "LOCK TABLE messages, chat_events, message_reactions, message_media, ai_replies"
        " IN EXCLUSIVE MODE"
    )
    for table in CARRY_CHAT:
        op.execute(f"ALTER TABLE {table} ADD COLUMN chat_id bigint")
        op.execute(
            f"UPDATE {table} SET chat_id = messages.chat_id"  # noqa: S608
            f" FROM messages WHERE messages.id = {table}.message_id"
        )
        op.execute(f"ALTER TABLE {table} ALTER COLUMN chat_id SET NOT NULL")
    _drop_references()
    _rebuild("messages", partitioned=True)
    op.execute(f"ALTER TABLE messages ADD CONSTRAINT pk_messages PRIMARY KEY {MESSAGE_KEY}")
    op.execute(
        "ALTER TABLE messages ADD CONSTRAINT uq_messages_chat_id_sender_id_client_msg_id"
        " UNIQUE (chat_id, sender_id, client_msg_id)"
    )
    op.execute(MESSAGES_CONSTRAINTS)
    for statement in MESSAGES_INDEXES:
        op.execute(statement)
    for table, constraint, column, on_delete, _ in REFERENCES:
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {constraint} FOREIGN KEY ({column}, chat_id)"
            f" REFERENCES messages {MESSAGE_KEY}" + (f" ON DELETE {on_delete}" if on_delete else "")
        )
    _rebuild("chat_events", partitioned=True)
    op.execute(CHAT_EVENTS_CONSTRAINTS)
    op.execute(POST_MESSAGE)
    _analyze()


def _downgrade_postgresql() -> None:
    op.execute(
        "LOCK TABLE messages, chat_events, message_reactions, message_media, ai_replies"
        " IN EXCLUSIVE MODE"
    )
    _drop_references()
    _rebuild("messages", partitioned=False)
    op.execute("ALTER TABLE messages ADD CONSTRAINT pk_messages PRIMARY KEY (id)")
    # Fails where a sender reused a client_msg_id in two chats, which 0009 did not allow.
    op.execute(
        "ALTER TABLE messages ADD CONSTRAINT uq_messages_sender_id_client_msg_id"
        " UNIQUE (sender_id, client_msg_id)"
    )
    op.execute(MESSAGES_CONSTRAINTS)
    for statement in MESSAGES_INDEXES:
        op.execute(statement)
    for table in CARRY_CHAT:
        op.execute(f"ALTER TABLE {table} DROP COLUMN chat_id")
    for table, constraint, column, _, on_delete in REFERENCES:
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {constraint} FOREIGN KEY ({column})"
            f" REFERENCES messages (id) ON DELETE {on_delete}"
        )
    _rebuild("chat_events", partitioned=False)
    op.execute(CHAT_EVENTS_CONSTRAINTS)
    op.execute(_post_message_of_0009())
    _analyze()


def _analyze() -> None:
    """New tables have no statistics until autovacuum comes by: plan with them from the start."""
    for table in ("messages", "chat_events", *CARRY_CHAT):
        op.execute(f"ANALYZE {table}")


def _post_message_of_0009() -> str:
    """0009's function, as 0009 wrote it."""
    config = op.get_context().config
    assert config is not None
    scripts = ScriptDirectory.from_config(config)
    revision = scripts.get_revision("0009")
    assert revision is not None
    function: str = revision.module.POST_MESSAGE
    return function.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def _id_column(name: str, *, nullable: bool) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=nullable)


ACTIVE_REPLY_INDEX = "uq_ai_replies_active_chat"
ACTIVE_REPLY_WHERE = "status IN ('queued', 'running')"


def _upgrade_sqlite() -> None:
    with foreign_keys_off():
        for table in CARRY_CHAT:
            op.add_column(table, _id_column("chat_id", nullable=True))
            op.execute(
                f"UPDATE {table} SET chat_id ="  # noqa: S608
                f" (SELECT chat_id FROM messages WHERE messages.id = {table}.message_id)"
            )
        for table in ("messages", *CARRY_CHAT, "ai_replies"):
            with op.batch_alter_table(table) as batch:
                if table == "messages":
                    batch.drop_constraint("uq_messages_sender_id_client_msg_id", type_="unique")
                    batch.create_unique_constraint(
                        "uq_messages_chat_id_sender_id_client_msg_id",
                        ["chat_id", "sender_id", "client_msg_id"],
                    )
                    batch.create_unique_constraint("uq_messages_id_chat_id", ["id", "chat_id"])
                if table in CARRY_CHAT:
                    batch.alter_column(
                        "chat_id",
                        existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                        nullable=False,
                    )
                for referencing, constraint, column, on_delete, _ in REFERENCES:
                    if referencing == table:
                        batch.drop_constraint(constraint, type_="foreignkey")
                        batch.create_foreign_key(
                            constraint,
                            "messages",
                            [column, "chat_id"],
                            ["id", "chat_id"],
                            ondelete=on_delete,
                        )
        _restore_active_reply_index()


def _downgrade_sqlite() -> None:
    with foreign_keys_off():
        for table in ("messages", *CARRY_CHAT, "ai_replies"):
            with op.batch_alter_table(table) as batch:
                for referencing, constraint, column, _, on_delete in REFERENCES:
                    if referencing == table:
                        batch.drop_constraint(constraint, type_="foreignkey")
                        batch.create_foreign_key(
                            constraint, "messages", [column], ["id"], ondelete=on_delete
                        )
                if table in CARRY_CHAT:
                    batch.drop_column("chat_id")
                if table == "messages":
                    batch.drop_constraint("uq_messages_id_chat_id", type_="unique")
                    batch.drop_constraint(
                        "uq_messages_chat_id_sender_id_client_msg_id", type_="unique"
                    )
                    batch.create_unique_constraint(
                        "uq_messages_sender_id_client_msg_id", ["sender_id", "client_msg_id"]
                    )
        _restore_active_reply_index()


def _restore_active_reply_index() -> None:
    """A batch rebuild of `ai_replies` does not carry its partial unique index over."""
    op.execute(f"DROP INDEX IF EXISTS {ACTIVE_REPLY_INDEX}")
    op.execute(
        f"CREATE UNIQUE INDEX {ACTIVE_REPLY_INDEX} ON ai_replies (chat_id)"
        f" WHERE {ACTIVE_REPLY_WHERE}"
    )
