"""The root key's interface: generations of one AES-256 key that seal small secrets."""

from __future__ import annotations

from abc import ABC, abstractmethod

from storage.errors import CustodyError


class RootKey(ABC):
    """Seals key-encryption keys and service secrets (AES-256-GCM with associated data).

    A root key has generations: ``rotate --root`` adds one, re-seals what the catalog
    holds under it, then destroys the older ones. Sealed values name the generation
    that sealed them.
    """

    @abstractmethod
    def describe(self) -> str:
        """Where the key lives, for operators' messages (never its value or a PIN)."""

    @abstractmethod
    def exists(self) -> bool:
        """Whether any generation exists (False for a new installation)."""

    @abstractmethod
    def generations(self) -> list[int]:
        """The usable generations, oldest first."""

    @abstractmethod
    def add_generation(self, first: bool = False) -> int:
        """Makes a new generation and returns it. With ``first`` (a new installation),
        only when none exists yet: replicas starting together make one root key."""

    @abstractmethod
    def destroy(self, generation: int) -> None:
        """Destroys a generation; what it sealed can never be unsealed afterwards."""

    @abstractmethod
    def seal(self, generation: int, plaintext: bytes, aad: bytes) -> bytes: ...

    @abstractmethod
    def unseal(self, generation: int, sealed: bytes, aad: bytes) -> bytes:
        """The plaintext, or CustodyError when the generation is gone or the value was
        altered or sealed with other associated data."""

    def current(self) -> int:
        generations = self.generations()
        if not generations:
            raise CustodyError(f"{self.describe()} holds no root key")
        return generations[-1]

    def close(self) -> None:  # noqa: B027 - the file backend holds nothing open
        """Releases a session (PKCS#11)."""
