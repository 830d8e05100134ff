"""The one place errors become HTTP: RFC 9457 problem+json with a stable ``reason``."""

from __future__ import annotations

import json
import logging
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
    BlobAuthenticationError,
    BlobNotFoundError,
    KeyringError,
    StorageError,
    StorageUnavailableError,
)
from storage.faults import is_catalog_unreachable, is_disk_full

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem(status: int, title: str, reason: str, detail: str,
            headers: dict[str, str] | None = None) -> web.Response:
    body: dict[str, Any] = {
        "type": f"https://recordings-service.invalid/problems/{reason}",
        "title": title, "status": status, "detail": detail, "reason": reason,
    }
    return web.Response(status=status, body=json.dumps(body).encode(),
                        headers={"Content-Type": PROBLEM_JSON, **(headers or {})})


def from_service_error(exc: ServiceError) -> web.Response:
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
    return problem(exc.status, exc.title, exc.reason, exc.detail, headers)


def from_storage_error(exc: StorageError) -> web.Response:
    # Never the message itself: it may name files or keys.
    if isinstance(exc, BlobAuthenticationError):
        log.error("stored audio failed authentication; not served",
                  extra={"error": type(exc).__name__})
        return problem(500, "Internal Server Error", "integrity_failure",
                       "the stored audio failed its integrity check and was not served")
    if isinstance(exc, KeyringError):
        log.error("data key could not be unwrapped", extra={"error": type(exc).__name__})
        return problem(500, "Internal Server Error", "key_unavailable",
                       "the recording's key is not available")
    if isinstance(exc, StorageUnavailableError):
        return problem(503, "Service Unavailable", "storage_unavailable",
                       "the blob store cannot be reached; try again", {"Retry-After": "5"})
    if isinstance(exc, BlobNotFoundError):
        log.error("stored audio is missing", extra={"error": type(exc).__name__})
        return problem(500, "Internal Server Error", "blob_missing",
                       "the stored audio is missing")
    log.error("storage error", extra={"error": type(exc).__name__})
    return problem(500, "Internal Server Error", "storage_error", "a storage error occurred")


_HTTP_REASONS = {404: "not_found", 405: "method_not_allowed", 413: "too_large",
                 400: "bad_request"}


def from_http_exception(exc: web.HTTPException) -> web.Response:
    reason = _HTTP_REASONS.get(exc.status, "http_error")
    headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
    return problem(exc.status, exc.reason, reason, exc.reason, headers)


def from_unexpected(exc: Exception, method: str) -> tuple[web.Response, str]:
    """An exception no layer turned into a ServiceError, and its reason: a full disk and
    a lost catalog are named (and retryable), anything else is a plain 500."""
    if is_disk_full(exc):
        if method in ("GET", "HEAD"):
            # A read that cannot be audited is not served: no audio without its entry.
            return problem(503, "Service Unavailable", "insufficient_storage",
                           "the service's storage is full, so this access cannot be "
                           "recorded in the audit log and is refused; retry later",
                           {"Retry-After": "30"}), "insufficient_storage"
        return problem(507, "Insufficient Storage", "insufficient_storage",
                       "the service's storage is full; nothing was stored"), \
            "insufficient_storage"
    if is_catalog_unreachable(exc):
        return problem(503, "Service Unavailable", "catalog_unavailable",
                       "the catalog database cannot be reached; retry shortly",
                       {"Retry-After": "5"}), "catalog_unavailable"
    return problem(500, "Internal Server Error", "internal_error",
                   "an unexpected error occurred"), "internal_error"
