"""Uploads received at once, per process: counted in all and per client (a credential, an
address), so that one sender's stalled or trickling uploads cannot hold every slot."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


class UploadSlots:
    def __init__(self, total: int) -> None:
        self.total = total
        self.in_use = 0
        self._held: Counter[str] = Counter()

    def full(self) -> bool:
        return self.in_use >= self.total

    def held(self, key: str) -> int:
        return self._held[key]

    @contextmanager
    def take(self, keys: tuple[str, ...]) -> Iterator[None]:
        """Takes a slot for these clients (the caller checked there is one: no await
        lies between the check and this, so no other request can take it first)."""
        self.in_use += 1
        self._held.update(keys)
        try:
            yield
        finally:
            self.in_use -= 1
            self._held.subtract(keys)
            for key in keys:
                if self._held[key] <= 0:
                    del self._held[key]  # the counter must not grow with every address
