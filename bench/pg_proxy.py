"""A loopback proxy in front of PostgreSQL that counts round trips.

A client waits for the server once per `Sync` (the extended query protocol: parse, bind,
execute... then Sync) and once per simple `Query`: those are its round trips, counted from the
bytes on the wire rather than assumed. The proxy declines SSL itself (so that it can read the
messages); everything else passes through unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.engine import make_url

_SPECIAL_REQUESTS = {80877103, 80877104}  # SSLRequest, GSSENCRequest: a startup follows
_ROUND_TRIP_MESSAGES = {ord("S"), ord("Q")}  # Sync, Query


@dataclass
class RoundTrips:
    count: int = 0


class _ClientStream:
    """The frontend's messages after the startup message: counts Sync and Query."""

    def __init__(self, trips: RoundTrips) -> None:
        self._trips = trips
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while True:
            if len(self._buffer) < 5:
                return
            kind = self._buffer[0]
            (length,) = struct.unpack("!i", self._buffer[1:5])
            if len(self._buffer) < 1 + length:
                return
            del self._buffer[: 1 + length]
            if kind in _ROUND_TRIP_MESSAGES:
                self._trips.count += 1


async def _startup_message(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """The client's startup message, after declining its SSL or GSS requests ('N')."""
    while True:
        head = await reader.readexactly(8)
        length, code = struct.unpack("!ii", head)
        rest = await reader.readexactly(length - 8)
        if code not in _SPECIAL_REQUESTS:
            return head + rest
        writer.write(b"N")
        await writer.drain()


async def pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    observe: Callable[[bytes], None] | None = None,
) -> None:
    """Copy one direction of a proxied TCP connection until it ends, showing `observe` the
    bytes on their way."""
    try:
        while data := await reader.read(65536):
            if observe is not None:
                observe(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


@dataclass(frozen=True)
class CountingProxy:
    url: str  # the database URL through the proxy
    trips: RoundTrips


@asynccontextmanager
async def counting_proxy(database_url: str) -> AsyncIterator[CountingProxy]:
    """A proxy to the PostgreSQL server of `database_url`; yields the URL through it."""
    upstream = make_url(database_url)
    trips = RoundTrips()
    tasks: set[asyncio.Task[None]] = set()

    async def serve(
        client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        startup = await _startup_message(client_reader, client_writer)
        server_reader, server_writer = await asyncio.open_connection(
            upstream.host or "127.0.0.1", upstream.port or 5432
        )
        server_writer.write(startup)
        stream = _ClientStream(trips)
        directions = [
            asyncio.create_task(pump(client_reader, server_writer, stream.feed)),
            asyncio.create_task(pump(server_reader, client_writer)),
        ]
        tasks.update(directions)
        await asyncio.wait(directions, return_when=asyncio.FIRST_COMPLETED)
        for direction in directions:
            direction.cancel()
        tasks.difference_update(directions)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        url = upstream.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        yield CountingProxy(url, trips)
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await server.wait_closed()
