"""Signed-up users for the messaging tests."""

from __future__ import annotations

from tests.support.api import user_fixture

alice = user_fixture(101, "Alice")
bob = user_fixture(102, "Bob")
carol = user_fixture(103, "Carol")
dave = user_fixture(104, "Dave")
