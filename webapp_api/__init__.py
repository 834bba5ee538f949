"""The Mini App's HTTP API (REST under /api/v1, WebSocket at /ws, docs at /docs)."""
