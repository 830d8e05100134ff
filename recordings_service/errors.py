"""Errors of the service layer; ``problems.py`` maps them (and storage errors) to HTTP.

    ServiceError                      status  (reason)
    ├── BadRequest                    400     invalid_metadata, invalid_json, purpose_required,
    │                                         unknown_purpose, invalid_query, ...
    ├── Unauthenticated               401     unauthenticated, invalid_credentials
    ├── Forbidden                     403     missing_role, purpose_not_allowed,
    │                                         purpose_expired, purpose_withdrawn, restricted,
    │                                         csrf
    ├── NotFound                      404     not_found
    ├── RequestTimeout                408     body_timeout
    ├── Conflict                      409     duplicate_call_id
    ├── Gone                          410     purged
    ├── PayloadTooLarge               413     too_large
    ├── UnsupportedMediaType          415     unsupported_media_type
    ├── RangeNotSatisfiable           416     range_not_satisfiable
    ├── Unprocessable                 422     checksum_mismatch, invalid_audio
    ├── TooManyAttempts               429     too_many_attempts (with Retry-After)
    ├── InsufficientStorage           507     insufficient_storage
    └── Unavailable                   503     too_many_uploads (with Retry-After)
    ConfigError                       (startup only, never HTTP)
    BackupError                       (backup and restore commands, never HTTP)

A full disk and a lost catalog surface as the drivers' own exceptions; problems.py
recognises them (storage/faults.py) and answers 507/503 insufficient_storage or 503
catalog_unavailable.
"""

from __future__ import annotations

from datetime import datetime


class ServiceError(Exception):
    status = 500
    title = "Internal Server Error"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class BadRequest(ServiceError):
    status = 400
    title = "Bad Request"


class Unauthenticated(ServiceError):
    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str = "a valid bearer token or session is required",
                 reason: str = "unauthenticated") -> None:
        super().__init__(reason, detail)


class Forbidden(ServiceError):
    status = 403
    title = "Forbidden"


class NotFound(ServiceError):
    status = 404
    title = "Not Found"

    def __init__(self, detail: str = "no such resource") -> None:
        super().__init__("not_found", detail)


class RequestTimeout(ServiceError):
    status = 408
    title = "Request Timeout"


class Conflict(ServiceError):
    status = 409
    title = "Conflict"


class Refused(Conflict):
    """A lawful refusal (legal hold, restriction, legal obligation) and when it may end."""

    def __init__(self, reason: str, detail: str, until: datetime | None) -> None:
        super().__init__(reason, detail)
        self.until = until


class Gone(ServiceError):
    status = 410
    title = "Gone"


class PayloadTooLarge(ServiceError):
    status = 413
    title = "Payload Too Large"


class UnsupportedMediaType(ServiceError):
    status = 415
    title = "Unsupported Media Type"


class RangeNotSatisfiable(ServiceError):
    status = 416
    title = "Range Not Satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__("range_not_satisfiable", "the requested range lies outside the audio")
        self.size = size


class Unprocessable(ServiceError):
    status = 422
    title = "Unprocessable Content"


class InsufficientStorage(ServiceError):
    status = 507
    title = "Insufficient Storage"


class Unavailable(ServiceError):
    status = 503
    title = "Service Unavailable"

    def __init__(self, reason: str, detail: str, retry_after: int = 5) -> None:
        super().__init__(reason, detail)
        self.retry_after = retry_after


class TooManyAttempts(ServiceError):
    status = 429
    title = "Too Many Requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__("too_many_attempts", "too many failed sign-ins; try again later")
        self.retry_after = retry_after


class ConfigError(Exception):
    """The configuration is invalid; raised at start, printed, never served."""


class BackupError(Exception):
    """A backup cannot be taken or restored; the message says what and where."""
