"""Errors raised by the storage layer. They know nothing of HTTP.

    StorageError
    ├── BlobAuthenticationError   stored bytes failed authentication (tampered, truncated,
    │                             swapped); never served
    ├── BlobNotFoundError         a blob the catalog names is missing
    ├── BlobLockedError           write-once retention or a legal hold keeps the blob
    ├── StorageUnavailableError   the object store cannot be reached or refused a request
    ├── KeyringError              a key-encryption key is unknown, retired or unusable
    ├── CustodyError              the root key's custody refused or cannot be reached
    │   └── KeyFileError          key material is missing, damaged or of an older release
    │                             (start-up only; the message says what to do)
    ├── AuditChainError           an append found the chain head inconsistent
    ├── ArchiveDamagedError       a tile of the audit archive is missing or malformed
    └── DuplicateCallIdError      the call id is already in the catalog
"""

from __future__ import annotations

from datetime import datetime


class StorageError(Exception):
    pass


class BlobAuthenticationError(StorageError):
    pass


class BlobNotFoundError(StorageError):
    pass


class BlobLockedError(StorageError):
    """The store keeps the blob under write-once retention (S3 Object Lock) or a legal
    hold: it cannot be deleted before ``until`` (None: until the hold is released)."""

    def __init__(self, message: str, until: datetime | None) -> None:
        super().__init__(message)
        self.until = until


class StorageUnavailableError(StorageError):
    """Its message names the store's error code or the exception type, never a key name
    or credentials."""


class KeyringError(StorageError):
    pass


class CustodyError(StorageError):
    """Its message names the custody (a file, a token), never key material or a PIN."""


class KeyFileError(CustodyError):
    """Its message names the file or token key and what to do."""


class AuditChainError(StorageError):
    pass


class ArchiveDamagedError(StorageError):
    """A tile the audit archive needs is missing or malformed: ``seq`` is the first entry
    it would have held."""

    def __init__(self, seq: int, problem: str) -> None:
        super().__init__(problem)
        self.seq = seq


class DuplicateCallIdError(StorageError):
    pass
