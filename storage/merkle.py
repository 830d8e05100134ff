"""RFC 6962 Merkle tree hashing and the hash chain of the audit log."""

from __future__ import annotations

import hashlib

GENESIS = bytes(32)


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def chain_hash(previous: bytes, leaf: bytes) -> bytes:
    return hashlib.sha256(previous + leaf).digest()


def frontier_append(frontier: list[bytes], size: int, leaf: bytes) -> list[bytes]:
    """Adds leaf number ``size`` (0-based) to the frontier of a tree of ``size`` leaves.

    The frontier holds the roots of the perfect subtrees the tree decomposes into,
    largest first; one per set bit of ``size``.
    """
    nodes = [*frontier, leaf]
    n = size
    while n & 1:
        right = nodes.pop()
        left = nodes.pop()
        nodes.append(node_hash(left, right))
        n >>= 1
    return nodes


def frontier_root(frontier: list[bytes]) -> bytes:
    """The RFC 6962 Merkle tree hash of the tree the frontier describes."""
    if not frontier:
        return hashlib.sha256(b"").digest()
    root = frontier[-1]
    for node in reversed(frontier[:-1]):
        root = node_hash(node, root)
    return root
