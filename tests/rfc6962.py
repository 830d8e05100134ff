"""RFC 6962 section 2.1 Merkle tree hash, written straight from the RFC as a reference."""

import hashlib

from storage import merkle


def reference_root(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle.node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))
