"""The one place errors become HTTP: RFC 9457 problem+json with a stable ``reason``."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from recordings_service.errors import (
    RangeNotSatisfiable,
    RequestTimeout,
    ServiceError,
    TooManyAttempts,
    Unauthenticated,
    Unavailable,
)
from storage.errors import (
    ArchiveDamagedError,
    BlobAuthenticationError,
    BlobNotFoundError,
    KeyringError,
    StorageError,
    StorageUnavailableError,
)
from storage.faults import is_catalog_unreachable, is_disk_full

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class Problem:
    """An error as HTTP states it; the API renders it as problem+json, the console as a
    page (``console.pages.error_page``)."""

    status: int
    title: str
    reason: str
    detail: str
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> web.Response:
        body: dict[str, Any] = {
            "type": f"https://recordings-service.invalid/problems/{self.reason}",
            "title": self.title, "status": self.status, "detail": self.detail,
            "reason": self.reason,
        }
        return web.Response(status=self.status, body=json.dumps(body).encode(),
                            headers={"Content-Type": PROBLEM_JSON, **self.headers})


def problem(status: int, title: str, reason: str, detail: str,
            headers: dict[str, str] | None = None) -> web.Response:
    return Problem(status, title, reason, detail, headers or {}).response()


def from_service_error(exc: ServiceError) -> Problem:
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="recordings"'
    if isinstance(exc, RangeNotSatisfiable):
        headers["Content-Range"] = f"bytes */{exc.size}"
    if isinstance(exc, Unavailable | TooManyAttempts):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, RequestTimeout | Unavailable):
        # The rest of a stalled or refused body is not read: this connection is done.
        headers["Connection"] = "close"
    return Problem(exc.status, exc.title, exc.reason, exc.detail, headers)


def from_storage_error(exc: StorageError) -> Problem:
    # Never the message itself: it may name files or keys.
    if isinstance(exc, BlobAuthenticationError):
        log.error("stored audio failed authentication; not served",
                  extra={"error": type(exc).__name__})
        return Problem(500, "Internal Server Error", "integrity_failure",
                       "the stored audio failed its integrity check and was not served")
    if isinstance(exc, KeyringError):
        log.error("data key could not be unwrapped", extra={"error": type(exc).__name__})
        return Problem(500, "Internal Server Error", "key_unavailable",
                       "the recording's key is not available")
    if isinstance(exc, StorageUnavailableError):
        return Problem(503, "Service Unavailable", "storage_unavailable",
                       "the blob store cannot be reached; try again", {"Retry-After": "5"})
    if isinstance(exc, ArchiveDamagedError):
        log.error("a tile of the audit archive is missing or damaged",
                  extra={"error": type(exc).__name__, "seq": exc.seq})
        return Problem(500, "Internal Server Error", "audit_archive_damaged",
                       "a tile of the audit archive is missing or damaged; run audit verify")
    if isinstance(exc, BlobNotFoundError):
        log.error("stored audio is missing", extra={"error": type(exc).__name__})
        return Problem(500, "Internal Server Error", "blob_missing",
                       "the stored audio is missing")
    log.error("storage error", extra={"error": type(exc).__name__})
    return Problem(500, "Internal Server Error", "storage_error", "a storage error occurred")


_HTTP_REASONS = {404: "not_found", 405: "method_not_allowed", 413: "too_large",
                 400: "bad_request"}


def from_http_exception(exc: web.HTTPException) -> Problem:
    reason = _HTTP_REASONS.get(exc.status, "http_error")
    headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
    return Problem(exc.status, exc.reason, reason, exc.reason, headers)


def from_unexpected(exc: Exception, method: str) -> tuple[Problem, str]:
    """An exception no layer turned into a ServiceError, and its reason: a full disk and
    a lost catalog are named (and retryable), anything else is a plain 500."""
    if is_disk_full(exc):
        if method in ("GET", "HEAD"):
            # A read that cannot be audited is not served: no audio without its entry.
            return Problem(503, "Service Unavailable", "insufficient_storage",
                           "the service's storage is full, so this access cannot be "
                           "recorded in the audit log and is refused; retry later",
                           {"Retry-After": "30"}), "insufficient_storage"
        return Problem(507, "Insufficient Storage", "insufficient_storage",
                       "the service's storage is full; nothing was stored"), \
            "insufficient_storage"
    if is_catalog_unreachable(exc):
        return Problem(503, "Service Unavailable", "catalog_unavailable",
                       "the catalog database cannot be reached; retry shortly",
                       {"Retry-After": "5"}), "catalog_unavailable"
    return Problem(500, "Internal Server Error", "internal_error",
                   "an unexpected error occurred"), "internal_error"
