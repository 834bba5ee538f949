"""What only HTTP has: request bodies and the response wrappers of the HTTP API (pages, results,
error bodies). The shapes of domain objects live in services/views."""
