"""Chats: their lifecycle (create, update, delete, restore), their members, invitations and
invite links, and the chat list."""
