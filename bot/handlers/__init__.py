"""Routers, one per surface: the private chat with the bot, and groups."""
