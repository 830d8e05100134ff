import os

from hypothesis import given, settings
from hypothesis import strategies as st

from storage import merkle
from tests.rfc6962 import reference_path, reference_root


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


def _frontier(leaves: list[bytes]) -> list[bytes]:
    frontier: list[bytes] = []
    for n, leaf in enumerate(leaves):
        frontier = merkle.frontier_append(frontier, n, leaf)
    return frontier


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 600).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_an_inclusion_path_from_the_frontier_and_later_leaves_is_the_rfcs_path(
        shape: tuple[int, int]) -> None:
    size, index = shape
    leaves = [merkle.leaf_hash(n.to_bytes(4, "big")) for n in range(size)]
    path = merkle.inclusion_path(index, size, _frontier(leaves[:index]), leaves[index + 1:])
    assert path == reference_path(index, leaves)
    assert merkle.root_from_inclusion(index, size, leaves[index], path) \
        == reference_root(leaves)


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))),
       st.data())
def test_an_inclusion_path_proves_nothing_for_another_leaf_or_index_or_a_changed_node(
        shape: tuple[int, int], data: st.DataObject) -> None:
    size, index = shape
    leaves = [merkle.leaf_hash(n.to_bytes(4, "big")) for n in range(size)]
    root = reference_root(leaves)
    path = reference_path(index, leaves)
    assert merkle.root_from_inclusion(index, size, leaves[index - 1], path) != root
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
    assert merkle.root_from_inclusion(other, size, leaves[index], path) != root
    at = data.draw(st.integers(0, len(path) - 1))
    changed = [*path[:at], bytes(32), *path[at + 1:]]
    assert merkle.root_from_inclusion(index, size, leaves[index], changed) != root
    assert merkle.root_from_inclusion(index, size, leaves[index], path[:-1]) != root
    assert merkle.root_from_inclusion(index, size, leaves[index], [*path, root]) is None
