"""The one error hierarchy. Front doors render it; services raise it."""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    status_code: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.extra = extra

    def headers(self) -> dict[str, str]:
        """HTTP headers that go with the error's answer: `Retry-After` when it says when."""
        retry_after = self.extra.get("retry_after")
        return {} if retry_after is None else {"Retry-After": str(retry_after)}


class BadRequest(AppError):
    status_code = 400
    default_code = "bad_request"


class Unauthorized(AppError):
    status_code = 401
    default_code = "unauthorized"


class PaymentRequired(AppError):
    status_code = 402
    default_code = "payment_required"


class Forbidden(AppError):
    status_code = 403
    default_code = "forbidden"


class NotFound(AppError):
    status_code = 404
    default_code = "not_found"


class Conflict(AppError):
    status_code = 409
    default_code = "conflict"


class PayloadTooLarge(AppError):
    status_code = 413
    default_code = "payload_too_large"


class UnsupportedMediaType(AppError):
    status_code = 415
    default_code = "unsupported_media_type"


class Unprocessable(AppError):
    status_code = 422
    default_code = "validation_error"


class TooManyRequests(AppError):
    status_code = 429
    default_code = "rate_limited"


class ServiceUnavailable(AppError):
    status_code = 503
    default_code = "unavailable"
