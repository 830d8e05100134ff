import os

from storage import merkle
from tests.rfc6962 import reference_root


def test_frontier_root_equals_rfc6962_for_every_size_up_to_70() -> None:
    leaves = [merkle.leaf_hash(os.urandom(8)) for _ in range(70)]
    frontier: list[bytes] = []
    assert merkle.frontier_root(frontier) == reference_root([])
    for size, leaf in enumerate(leaves):
        frontier = merkle.frontier_append(frontier, size, leaf)
        assert len(frontier) == bin(size + 1).count("1")
        assert merkle.frontier_root(frontier) == reference_root(leaves[: size + 1])


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    a, b = b"a" * 32, b"b" * 32
    assert merkle.leaf_hash(a + b) != merkle.node_hash(a, b)
