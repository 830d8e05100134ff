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


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_path(index: int, size: int, frontier_before: list[bytes],
                   later_leaves: list[bytes]) -> list[bytes]:
    """The RFC 9162 (2.1.3.1) inclusion path of leaf ``index`` in the tree of ``size``
    leaves, from what is kept near it rather than the whole log: the frontier of the tree
    just before the leaf was appended (its left siblings are exactly those subtrees) and
    the leaves after it up to ``size`` (its right siblings are built from them)."""
    if not 0 <= index < size or len(later_leaves) != size - index - 1:
        raise ValueError("the leaf or the later leaves do not fit the tree size")
    left: dict[tuple[int, int], bytes] = {}
    start, kept = 0, iter(frontier_before)
    for bit in reversed(range(index.bit_length())):
        if index >> bit & 1:
            left[(start, 1 << bit)] = next(kept)
            start += 1 << bit

    def later(lo: int, hi: int) -> bytes:
        frontier: list[bytes] = []
        for n, leaf in enumerate(later_leaves[lo - index - 1 : hi - index - 1]):
            frontier = frontier_append(frontier, n, leaf)
        return frontier_root(frontier)

    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            path.append(later(lo + k, hi))
            hi = lo + k
        else:
            path.append(left[(lo, k)])
            lo += k
    return path[::-1]


def root_from_inclusion(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes | None:
    """The root an inclusion path leads to (RFC 9162 2.1.3.2), or None when the path
    cannot belong to a tree of that size."""
    if not 0 <= index < size:
        return None
    fn, sn, root = index, size - 1, leaf
    for node in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            root = node_hash(node, root)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            root = node_hash(root, node)
        fn, sn = fn >> 1, sn >> 1
    return root if sn == 0 else None
