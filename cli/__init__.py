"""Operator commands: a front door beside the API, the bot and the workers (`python -m cli.admin`)."""
