"""The C2SP tlog-tiles layout (https://c2sp.org/tlog-tiles) of the audit log's Merkle tree.

    checkpoint                      signed note over the archive's size and root
    tile/<L>/<N>[.p/<W>]            hashes at tree level 8·L: 256 per full tile, W in a
                                    partial one; level 0 holds the entries' leaf hashes
    tile/entries/<N>[.p/<W>]        entry bundles: each entry as a big-endian uint16
                                    length and its bytes
    chain/<N>[.p/<W>]               this log's extension: the hash chain before the
                                    bundle's first entry, then after each of its entries

``<N>`` is written in 3-digit groups, all but the last prefixed with ``x``
(1234067 → ``x001/x234/067``). A level-L hash is the root of the perfect subtree of the
256^L leaves under it, so every tile is fixed once full, and a reader checks any entry
against a checkpoint by reading one tile per level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from storage import merkle

WIDTH = 256
HASH_SIZE = 32
MAX_ENTRY = 0xFFFF
CHECKPOINT = "checkpoint"


def index_path(index: int) -> str:
    groups = [f"{index % 1000:03d}"]
    while index >= 1000:
        index //= 1000
        groups.append(f"x{index % 1000:03d}")
    return "/".join(reversed(groups))


def _with_width(path: str, width: int) -> str:
    return path if width == WIDTH else f"{path}.p/{width}"


def tile_path(level: int, index: int, width: int = WIDTH) -> str:
    return _with_width(f"tile/{level}/{index_path(index)}", width)


def bundle_path(index: int, width: int = WIDTH) -> str:
    return _with_width(f"tile/entries/{index_path(index)}", width)


def chain_path(index: int, width: int = WIDTH) -> str:
    return _with_width(f"chain/{index_path(index)}", width)


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY:
            raise ValueError("an entry longer than 65535 bytes cannot be bundled")
        out += len(entry).to_bytes(2, "big")
        out += entry
    return bytes(out)


def decode_bundle(data: bytes, width: int) -> list[bytes]:
    entries, at = [], 0
    while at < len(data):
        if at + 2 > len(data):
            raise ValueError("a bundle ends inside an entry's length")
        length = int.from_bytes(data[at:at + 2], "big")
        if at + 2 + length > len(data):
            raise ValueError("a bundle ends inside an entry")
        entries.append(data[at + 2:at + 2 + length])
        at += 2 + length
    if len(entries) != width:
        raise ValueError(f"a bundle holds {len(entries)} entries, not {width}")
    return entries


def decode_hashes(data: bytes, count: int) -> list[bytes]:
    if len(data) != count * HASH_SIZE:
        raise ValueError(f"holds {len(data)} bytes, not {count} hashes")
    return [data[i:i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def subtree_root(hashes: Sequence[bytes]) -> bytes:
    """The root over a power of two of hashes (a full tile)."""
    level = list(hashes)
    while len(level) > 1:
        level = [merkle.node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


@dataclass
class TreeTiles:
    """The tiles of levels 1 and up, built as full level-0 tiles are added in order.

    Holds one incomplete tile per level: memory stays a few kilobytes per level whatever
    the size. ``partials[L]`` are the hashes of level L's incomplete tile; an archive that
    grows starts from those of the tiles it wrote last (``partial_paths``)."""
    size: int
    partials: dict[int, list[bytes]] = field(default_factory=dict)

    def add(self, leaf_tile: Sequence[bytes]) -> list[tuple[str, bytes]]:
        """Adds a full level-0 tile (the next 256 leaves); the tiles that became full."""
        if len(leaf_tile) != WIDTH or self.size % WIDTH:
            raise ValueError("tiles grow by full level-0 tiles")
        done: list[tuple[str, bytes]] = []
        self.size += WIDTH
        node, level = subtree_root(leaf_tile), 1
        while True:
            hashes = self.partials.setdefault(level, [])
            hashes.append(node)
            if len(hashes) < WIDTH:
                return done
            index = self.size // WIDTH ** (level + 1) - 1
            done.append((tile_path(level, index), b"".join(hashes)))
            node, level = subtree_root(hashes), level + 1
            hashes.clear()

    def partial_tiles(self) -> list[tuple[str, bytes]]:
        """The incomplete tile of each level that has one, at its width now."""
        return [(tile_path(level, self.size // WIDTH ** (level + 1), len(hashes)),
                 b"".join(hashes)) for level, hashes in sorted(self.partials.items()) if hashes]


def partial_widths(size: int) -> list[tuple[int, int, int]]:
    """(level, index, width) of each incomplete tile above level 0 of a tree of ``size``
    leaves (a multiple of 256)."""
    found, level = [], 1
    while size >= WIDTH ** level:
        count = size // WIDTH ** level
        if count % WIDTH:
            found.append((level, count // WIDTH, count % WIDTH))
        level += 1
    return found


def paths_between(before: int, size: int) -> list[str]:
    """What an archive of ``size`` entries holds that one of ``before`` did not (both
    multiples of 256): its new bundles, chains and tiles, and its partial tiles."""
    paths = [CHECKPOINT]
    if size <= before:
        return paths
    for index in range(before // WIDTH, size // WIDTH):
        paths += [bundle_path(index), chain_path(index), tile_path(0, index)]
    level = 1
    while size >= WIDTH ** (level + 1):
        start, end = before // WIDTH ** (level + 1), size // WIDTH ** (level + 1)
        paths += [tile_path(level, index) for index in range(start, end)]
        level += 1
    paths += [tile_path(level, index, width) for level, index, width in partial_widths(size)]
    return paths
