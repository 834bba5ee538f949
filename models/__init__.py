"""SQLAlchemy 2.0 models only: tables, columns, constraints; no behaviour beyond defaults."""

from models.base import Base
from models.chat import Chat, ChatMember, ChatType, MemberRole
from models.message import ChatEvent, Message, MessageType
from models.user import User

__all__ = [
    "Base",
    "Chat",
    "ChatEvent",
    "ChatMember",
    "ChatType",
    "MemberRole",
    "Message",
    "MessageType",
    "User",
]
