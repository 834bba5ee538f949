"""Operator commands (`python -m cli.admin`): a front door beside the API, the bot and the
workers."""
