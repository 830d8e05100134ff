"""Errors raised by the storage layer. They know nothing of HTTP.

    StorageError
    ├── BlobAuthenticationError   stored bytes failed authentication (tampered, truncated,
    │                             swapped); never served
    ├── BlobNotFoundError         a blob the catalog names is missing
    ├── KeyringError              a key-encryption key is unknown, retired or unusable
    ├── KeyFileError              a key file is missing, empty or damaged (start-up only)
    ├── AuditChainError           an append found the chain head inconsistent
    └── DuplicateCallIdError      the call id is already in the catalog
"""


class StorageError(Exception):
    pass


class BlobAuthenticationError(StorageError):
    pass


class BlobNotFoundError(StorageError):
    pass


class KeyringError(StorageError):
    pass


class KeyFileError(StorageError):
    """Its message names the file and what to do; it never holds key material."""


class AuditChainError(StorageError):
    pass


class DuplicateCallIdError(StorageError):
    pass
