"""A broker for tests that plays a slow or lossy Redis: it rings nobody, and the test decides
when (and whether) each envelope it kept is delivered."""

from __future__ import annotations

from core.broker import Broker


class HeldBack(Broker):
    """A doorbell that rings nobody: what is published waits here."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[bytes] = []

    async def publish(self, data: bytes) -> None:
        self.envelopes.append(data)

    async def ping(self) -> bool:
        return True
