"""SQLAlchemy 2.0 models only: tables, columns, constraints; no behaviour beyond defaults."""

from models.base import Base
from models.chat import (
    Chat,
    ChatInvitation,
    ChatInviteLink,
    ChatMember,
    ChatType,
    MemberRole,
)
from models.message import ChatEvent, Message, MessageReaction, MessageType
from models.user import AuthSession, RefreshToken, User

__all__ = [
    "AuthSession",
    "Base",
    "Chat",
    "ChatEvent",
    "ChatInvitation",
    "ChatInviteLink",
    "ChatMember",
    "ChatType",
    "MemberRole",
    "Message",
    "MessageReaction",
    "MessageType",
    "RefreshToken",
    "User",
]
