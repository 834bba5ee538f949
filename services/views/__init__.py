"""The shapes of domain objects as clients see them, and the functions that build them: shared
by REST responses, WebSocket frames and stored chat events, so that every surface shows the
same thing."""
