"""The C2SP tlog-tiles layout: paths, entry bundles, and tiles above level 0 that hold the
roots of the tiles below, however the archive grew."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage import tlog_tiles
from storage.tlog_tiles import TreeTiles
from tests.rfc6962 import reference_root


def test_paths_follow_the_spec() -> None:
    assert tlog_tiles.index_path(0) == "000"
    assert tlog_tiles.index_path(999) == "999"
    assert tlog_tiles.index_path(1000) == "x001/000"
    assert tlog_tiles.index_path(1234067) == "x001/x234/067"
    assert tlog_tiles.tile_path(0, 5) == "tile/0/005"
    assert tlog_tiles.tile_path(1, 1234067, 12) == "tile/1/x001/x234/067.p/12"
    assert tlog_tiles.bundle_path(3) == "tile/entries/003"


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=40))
def test_a_bundle_reads_back_as_written(entries: list[bytes]) -> None:
    assert tlog_tiles.decode_bundle(tlog_tiles.encode_bundle(entries), len(entries)) == entries


@given(st.binary(max_size=600), st.integers(min_value=0, max_value=300))
def test_a_damaged_bundle_is_refused_never_misread(data: bytes, width: int) -> None:
    try:
        entries = tlog_tiles.decode_bundle(data, width)
    except ValueError:
        return
    assert tlog_tiles.encode_bundle(entries) == data and len(entries) == width


def test_an_entry_too_long_for_a_bundle_is_refused() -> None:
    with pytest.raises(ValueError):
        tlog_tiles.encode_bundle([b"x" * 65536])


def _leaves(count: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(count)]


def test_a_level_one_tile_holds_the_roots_of_the_level_zero_tiles() -> None:
    leaves = _leaves(256 * 256 + 512)
    tree = TreeTiles(0)
    written = dict(p for i in range(0, len(leaves), 256) for p in tree.add(leaves[i:i + 256]))
    written |= dict(tree.partial_tiles())
    full = tlog_tiles.decode_hashes(written["tile/1/000"], 256)
    assert full[7] == reference_root(leaves[7 * 256:8 * 256])
    assert tlog_tiles.decode_hashes(written["tile/2/000.p/1"], 1) == [
        reference_root(leaves[:256 * 256])]
    partial = tlog_tiles.decode_hashes(written["tile/1/001.p/2"], 2)
    assert partial[1] == reference_root(leaves[256 * 257:256 * 258])


def test_an_archive_grown_in_steps_has_the_tiles_of_one_grown_at_once() -> None:
    leaves = _leaves(256 * 300)
    at_once = TreeTiles(0)
    expected = dict(p for i in range(0, len(leaves), 256) for p in at_once.add(leaves[i:i + 256]))
    expected |= dict(at_once.partial_tiles())

    written: dict[str, bytes] = {}
    size = 0
    for step in (256 * 3, 256 * 250, 256 * 300):
        tree = TreeTiles(size)
        for level, index, width in tlog_tiles.partial_widths(size):
            tree.partials[level] = tlog_tiles.decode_hashes(
                written[tlog_tiles.tile_path(level, index, width)], width)
        for i in range(size, step, 256):
            written |= dict(tree.add(leaves[i:i + 256]))
        written |= dict(tree.partial_tiles())
        size = step
    current = {p for p in tlog_tiles.paths_between(0, size) if p.startswith("tile/") and
               not p.startswith("tile/0/") and not p.startswith("tile/entries/")}
    assert {p: written[p] for p in current} == {p: expected[p] for p in current}
    assert current == set(expected)
