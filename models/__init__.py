"""SQLAlchemy 2.0 models only: tables, columns, constraints; no behaviour beyond defaults."""

from models.ai import ACTIVE_REPLY_STATUSES, AiJobKind, AiReply, AiReplyStatus, UserProfile
from models.assistant import (
    Assistant,
    AssistantBot,
    AssistantVisibility,
    DocumentStatus,
    KnowledgeChunk,
    KnowledgeDocument,
    ReplyRating,
)
from models.base import Base
from models.billing import (
    BillingAccount,
    BillingHold,
    LedgerEntry,
    LedgerKind,
    PaymentStatus,
    StarPayment,
)
from models.chat import (
    AiMode,
    Chat,
    ChatInvitation,
    ChatInviteLink,
    ChatMember,
    ChatType,
    MemberRole,
)
from models.media import Media, MediaKind, MessageMedia
from models.message import ChatEvent, Message, MessageReaction, MessageType
from models.user import AuthSession, RefreshToken, User

__all__ = [
    "ACTIVE_REPLY_STATUSES",
    "AiJobKind",
    "AiMode",
    "AiReply",
    "AiReplyStatus",
    "Assistant",
    "AssistantBot",
    "AssistantVisibility",
    "AuthSession",
    "Base",
    "BillingAccount",
    "BillingHold",
    "Chat",
    "ChatEvent",
    "ChatInvitation",
    "ChatInviteLink",
    "ChatMember",
    "ChatType",
    "DocumentStatus",
    "KnowledgeChunk",
    "KnowledgeDocument",
    "LedgerEntry",
    "LedgerKind",
    "Media",
    "MediaKind",
    "MemberRole",
    "Message",
    "MessageMedia",
    "MessageReaction",
    "MessageType",
    "PaymentStatus",
    "RefreshToken",
    "ReplyRating",
    "StarPayment",
    "User",
    "UserProfile",
]
