"""Every error Souverain returns, and the one place that renders them.

The hierarchy (all subclasses of `SouverainError`)::

    SouverainError                      500 internal_error
    ├── InvalidRequest                  400 invalid_request_error
    │   ├── ContextLengthExceeded       400 code=context_length_exceeded
    │   └── UnsupportedByModel          400 code=unsupported_by_model
    ├── AuthenticationFailed            401 authentication_error
    ├── PermissionDenied                403 permission_error
    │   └── DlpBlocked                  403 code=dlp_blocked (no deployment may see the data)
    ├── NotFound                        404 not_found_error
    ├── MethodNotAllowed                405 invalid_request_error
    ├── Conflict                        409 invalid_request_error (already exists, not empty)
    ├── RequestTimeout                  408 invalid_request_error (a body sent too slowly)
    ├── PayloadTooLarge                 413 invalid_request_error
    ├── RateLimited                     429 rate_limit_error (Retry-After)
    │   └── StorageQuotaExceeded        429 code=insufficient_quota (x-should-retry: false)
    ├── EngineError                     502 upstream_error (an engine failed)
    │   └── EngineUnavailable           503 service_unavailable (Retry-After; failover may retry)
    │       └── EngineOverloaded        503 code=overloaded (the queue is full)
    ├── StageUnavailable                503 service_unavailable (a guard could not run: fail closed)
    │   ├── DlpUnavailable              503 code=dlp_unavailable
    │   ├── AuditUnavailable            503 code=audit_unavailable
    │   └── QuotaUnavailable            503 code=quota_unavailable (the quota store is down)
    └── ConfigError                     raised at start-up only, never rendered

The body is OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`. The
openai SDK reads `body["error"]`; the mistralai SDK keeps the body and the status
code in `SDKError`. A stream that fails after its headers went out ends with the
same object as a `data:` event, then `data: [DONE]`.
"""

from __future__ import annotations

import json
from typing import Any


class SouverainError(Exception):
    status_code = 500
    error_type = "internal_error"
    default_code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, round(self.retry_after)))}


class InvalidRequest(SouverainError):
    status_code = 400
    error_type = "invalid_request_error"


class ContextLengthExceeded(InvalidRequest):
    default_code = "context_length_exceeded"


class UnsupportedByModel(InvalidRequest):
    default_code = "unsupported_by_model"


class AuthenticationFailed(SouverainError):
    status_code = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(SouverainError):
    status_code = 403
    error_type = "permission_error"


class DlpBlocked(PermissionDenied):
    default_code = "dlp_blocked"


class NotFound(SouverainError):
    status_code = 404
    error_type = "not_found_error"
    default_code = "not_found"


class MethodNotAllowed(SouverainError):
    status_code = 405
    error_type = "invalid_request_error"
    default_code = "method_not_allowed"


class Conflict(SouverainError):
    status_code = 409
    error_type = "invalid_request_error"
    default_code = "conflict"


class RequestTimeout(SouverainError):
    status_code = 408
    error_type = "invalid_request_error"
    default_code = "request_timeout"


class PayloadTooLarge(SouverainError):
    status_code = 413
    error_type = "invalid_request_error"
    default_code = "payload_too_large"


class RateLimited(SouverainError):
    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limited"


class StorageQuotaExceeded(RateLimited):
    """A tenant's stored files would pass its quota (files.tenant_quota_bytes). OpenAI's
    status for a spent quota; `x-should-retry: false` keeps the openai SDK from sending
    the same upload again, which would fail the same way."""

    default_code = "insufficient_quota"

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "x-should-retry": "false"}


class EngineError(SouverainError):
    """An engine answered with an error we cannot recover from."""

    status_code = 502
    error_type = "upstream_error"
    default_code = "engine_error"


class EngineUnavailable(EngineError):
    """The engine could not take the request (down, 5xx, timeout): another deployment may."""

    status_code = 503
    error_type = "service_unavailable"
    default_code = "engine_unavailable"


class EngineOverloaded(EngineUnavailable):
    default_code = "overloaded"


class StageUnavailable(SouverainError):
    """A stage every call must pass could not run, so the call is not made."""

    status_code = 503
    error_type = "service_unavailable"


class DlpUnavailable(StageUnavailable):
    default_code = "dlp_unavailable"


class AuditUnavailable(StageUnavailable):
    default_code = "audit_unavailable"


class QuotaUnavailable(StageUnavailable):
    default_code = "quota_unavailable"


class ConfigError(Exception):
    """The configuration is invalid; the message names the bad key."""


def sse_error_event(error: SouverainError) -> bytes:
    """The frames that end a stream whose headers were already sent."""
    frame = json.dumps(error.body(), ensure_ascii=False, separators=(",", ":")).encode()
    return b"data: " + frame + b"\n\ndata: [DONE]\n\n"
