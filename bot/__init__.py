"""The aiogram 3 bot: the AI in Telegram chats, the door to the Mini App, notifications.
Handlers are thin and call the same services as the API."""
