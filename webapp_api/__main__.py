"""`python -m webapp_api`: serve the API with uvicorn on HOST:PORT with WORKERS processes."""

from __future__ import annotations

import uvicorn

from core.logging import setup_logging
from core.settings import get_settings, log_alias_uses
from webapp_api.app import uvicorn_options


def main() -> None:
    settings = get_settings()
    setup_logging(settings.log_level, json_lines=settings.environment == "production")
    log_alias_uses()
    uvicorn.run(
        "webapp_api.app:serve_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        proxy_headers=True,
        **uvicorn_options(settings),
    )


if __name__ == "__main__":
    main()
