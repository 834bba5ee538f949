"""The realtime hub: per-connection bounded queues and writers, the broker fan-out and the
WebSocket protocol. Filled by the realtime issue."""
