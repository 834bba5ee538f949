"""Settings, database engine and sessions, errors, Telegram auth, the event broker, logging."""

__version__ = "0.1.0"
