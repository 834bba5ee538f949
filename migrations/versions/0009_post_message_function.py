"""A message sent in one round trip: the `post_message` function (PostgreSQL only).

Everything a send writes and checks, done where the rows are: membership, the reply's chat,
idempotency by `client_msg_id`, the chat's next seq, the message, its media, the event (the
message view the server finished with the message's id and seq), and the ids of the members to
deliver it to. Called as one statement, it commits by itself (autocommit) or inside the caller's
transaction; see `services.messages`. SQLite runs the same steps as separate statements.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 14:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# outcome: 'sent'; 'duplicate' (the sender already used client_msg_id: message_id and chat_id
# name the original, nothing was written); 'not_member' (no such active chat for the sender);
# 'bad_reply_to' (not a message of this chat); 'ai_answers' (p_unless_ai_answers, and the chat's
# AI answers every message: nothing was written, the caller sends in a transaction of its own).
POST_MESSAGE = """
CREATE FUNCTION post_message(
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
    v_chat bigint;
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
        SELECT o.id, o.seq, o.chat_id INTO v_id, v_seq, v_chat FROM messages o
        WHERE o.sender_id = p_sender_id AND o.client_msg_id = p_client_msg_id;
        IF FOUND THEN
            RETURN QUERY SELECT 'duplicate', v_id, v_seq, v_chat, v_type, v_mode, NULL::bigint[];
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
    ON CONFLICT (sender_id, client_msg_id) DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        -- A concurrent attempt with this client_msg_id committed while this one waited for the
        -- chat: give the seq back (the row is still ours, nobody took a later one).
        UPDATE chats SET last_seq = last_seq - 1 WHERE id = p_chat_id;
        SELECT o.id, o.seq, o.chat_id INTO v_id, v_seq, v_chat FROM messages o
        WHERE o.sender_id = p_sender_id AND o.client_msg_id = p_client_msg_id;
        RETURN QUERY SELECT 'duplicate', v_id, v_seq, v_chat, v_type, v_mode, NULL::bigint[];
        RETURN;
    END IF;
    UPDATE chats SET last_message_id = v_id, last_activity_at = p_now WHERE id = p_chat_id;
    IF p_media_ids IS NOT NULL THEN
        INSERT INTO message_media (message_id, media_id, position)
        SELECT v_id, item.media_id, item.position - 1
        FROM unnest(p_media_ids) WITH ORDINALITY AS item(media_id, position);
    ELSIF p_media_from IS NOT NULL THEN
        INSERT INTO message_media (message_id, media_id, position)
        SELECT v_id, source.media_id, source.position
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
        op.execute(POST_MESSAGE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION post_message(bigint, bigint, text, text, bigint, text, bigint, bigint,"
            " bigint, timestamptz, jsonb, bigint[], bigint, boolean)"
        )
