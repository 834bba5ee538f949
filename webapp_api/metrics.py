"""What `GET /metrics` exposes: read from the process's live objects at each scrape.

No metric is kept in a global registry: each scrape builds a registry around a collector that
reads the broker's counters and the hub's sockets as they are now, plus prometheus-client's
process collector (CPU seconds, resident memory, open files). With `WORKERS > 1` each worker
answers for itself (whichever the scrape reaches); one view of all workers is issue 22's
multiprocess mode.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from core.broker import Broker
from ws.hub import Hub

PREFIX = "aimessenger"


class LiveCollector:
    """The broker's traffic through Redis and the hub's sockets (the capacity model's inputs,
    docs/SCALING.md)."""

    def __init__(self, broker: Broker, hub: Hub) -> None:
        self._broker = broker
        self._hub = hub

    def collect(self) -> Iterable[Metric]:
        stats = self._broker.stats
        counters = (
            ("broker_envelopes_published", "Envelopes this process published", stats.published),
            (
                "broker_messages_sent",
                "Messages this process sent to Redis (one per route of each envelope)",
                stats.sent,
            ),
            (
                "broker_messages_received",
                "Messages Redis delivered to this process (published by other processes)",
                stats.received,
            ),
            (
                "broker_messages_unrouted",
                "Received messages no listener here wanted any more",
                stats.unrouted,
            ),
        )
        for name, documentation, value in counters:
            yield CounterMetricFamily(f"{PREFIX}_{name}", documentation, value=value)
        gauges = (
            ("broker_routes", "Routes this process subscribes to", self._broker.route_count),
            ("ws_connections", "Open WebSocket connections", self._hub.sockets),
            ("ws_users", "Users with a WebSocket connection here", self._hub.users),
        )
        for name, documentation, value in gauges:
            yield GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


def exposition(broker: Broker, hub: Hub) -> bytes:
    """The Prometheus text format of this process's metrics, now."""
    registry = CollectorRegistry()
    registry.register(LiveCollector(broker, hub))
    ProcessCollector(registry=registry)
    return generate_latest(registry)
