"""Checks a redaction offline, with nothing but its receipt, its proof, the audio as served
after it, and the service's public key (``recordings-service verify-redaction``):

1. the receipt is signed by the service's key;
2. the audio is the audio the receipt names (its SHA-256);
3. each piece of the audio the redaction left alone is, with its salt, the leaf committed
   at upload (docs/at-rest-format.md); the pieces given as changed are only those the
   receipt's spans reach, so no other change can hide among them; and the committed leaves
   give the original root the receipt names;
4. the proof's upload audit entry commits to that root for that recording;
5. that entry is in the audit log the service signed: an RFC 9162 inclusion path leads
   from it to the root of a checkpoint signed by the same key (docs/audit-format.md).
Each failure names the check and, for a piece, its index and its time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from recordings_service import commitment
from recordings_service.receipts import REDACTION_RECEIPT_TYPE, verify_receipt
from recordings_service.redaction_audio import Span, audio_end_of, byte_ranges, layout_of
from storage.audit_log import canonical_json, parse_checkpoint_text
from storage.merkle import frontier_append, frontier_root, leaf_hash, root_from_inclusion
from storage.signing import open_note


def verify(receipt: Mapping[str, Any], proof: Mapping[str, Any], audio: bytes,
           public_key: Ed25519PublicKey) -> list[str]:
    """What fails, in words; empty when everything holds."""
    if not verify_receipt(dict(receipt), public_key):
        return ["receipt signature: not made by this key, or the receipt was changed"]
    body = receipt["receipt"]
    if body.get("type") != REDACTION_RECEIPT_TYPE:
        return ["receipt: not a redaction receipt"]
    problems = []
    if hashlib.sha256(audio).hexdigest() != body["audio_sha256"]:
        problems.append("audio sha256: the audio is not the audio the receipt names")
    for name in ("recording_id", "redaction_id", "original_root"):
        if proof.get(name) != body.get(name):
            problems.append(f"proof {name}: differs from the receipt's")
    shape = body["commitment"]
    offset, size, chunks = shape["audio_offset"], shape["chunk_bytes"], shape["chunks"]
    pieces = commitment.pieces(audio, offset, size)
    if len(pieces) != chunks:
        return [*problems, f"pieces: the audio makes {len(pieces)}, {chunks} were committed"]
    layout = layout_of(audio[:offset], offset)
    if layout is None:
        return [*problems, "audio: not a WAV format a redaction rewrites"]
    # The spans of every redaction of the recording so far: the pieces any of them changed.
    spans = [Span(s["start_ms"], s["end_ms"], s.get("channel"))
             for s in body.get("all_spans", body["spans"])]
    audio_end = audio_end_of(audio[:offset], offset, len(audio))
    reached = {i for start, end in byte_ranges(layout, spans, audio_end)
               for i in range(commitment.piece_of(start, offset, size),
                              commitment.piece_of(end - 1, offset, size) + 1)}
    salts, changed = proof.get("salts", {}), set(proof.get("changed_pieces", []))
    leaves = [bytes.fromhex(leaf) for leaf in proof.get("leaves", [])]
    beyond = sorted(changed - reached)
    if beyond:
        problems.append(f"proof: pieces {beyond} are given as changed, but no span reaches "
                        f"them")
    if len(leaves) != chunks:
        return [*problems, f"proof leaves: {len(leaves)} given, {chunks} were committed"]
    seconds = commitment.CHUNK_SECONDS
    for index, piece in enumerate(pieces):
        if index in changed:
            continue
        if str(index) not in salts:
            problems.append(f"proof: piece {index} is neither changed nor given its salt")
        elif commitment.chunk_leaf(index, bytes.fromhex(salts[str(index)]), piece) \
                != leaves[index]:
            where = "the header" if index == 0 else \
                f"{(index - 1) * seconds} s to {index * seconds} s"
            problems.append(f"piece {index} ({where}) is not as committed at upload")
    frontier: list[bytes] = []
    for index, leaf in enumerate(leaves):
        frontier = frontier_append(frontier, index, leaf)
    if frontier_root(frontier).hex() != body["original_root"]:
        problems.append("original root: the committed leaves do not give the root the "
                        "receipt names (a leaf or the root was substituted)")
    entry = proof.get("upload_entry")
    if entry is None:
        problems.append("upload entry: not in the proof (archived off the catalog)")
    elif (entry.get("action") != "upload" or entry.get("recording_id") != body["recording_id"]
          or (entry.get("detail") or {}).get("commitment", {}).get("root")
          != body["original_root"]):
        problems.append("upload entry: does not commit this recording to the original root")
    elif not _links_to_its_hash(entry):
        problems.append("upload entry: not the entry its hash in the log's chain names")
    if entry is not None:
        problems.extend(_inclusion_problems(entry, proof.get("inclusion"), public_key))
    return problems


def _inclusion_problems(entry: Mapping[str, Any], inclusion: Any,
                        public_key: Ed25519PublicKey) -> list[str]:
    if not isinstance(inclusion, Mapping):
        return ["upload entry inclusion: not in the proof"]
    try:
        note = str(inclusion["checkpoint"])
        text = open_note(note, note.split("\n", 1)[0], public_key)
        if text is None:
            return ["checkpoint: not signed by this key, or changed"]
        _, size, root, _ = parse_checkpoint_text(text)
        index, path = int(inclusion["leaf_index"]), [bytes.fromhex(str(node))
                                                     for node in inclusion["path"]]
    except (KeyError, TypeError, ValueError):
        return ["upload entry inclusion: malformed"]
    problems = []
    if inclusion.get("tree_size") != size:
        problems.append("upload entry inclusion: its tree size is not the checkpoint's")
    if entry.get("seq") != index + 1:
        problems.append("upload entry inclusion: its leaf index is not the entry's seq")
    content = {k: v for k, v in entry.items() if k not in ("prev_hash", "hash")}
    if root_from_inclusion(index, size, leaf_hash(canonical_json(content)), path) != root:
        problems.append("upload entry inclusion: the path does not lead from the entry to "
                        "the signed checkpoint's root")
    return problems


def _links_to_its_hash(entry: Mapping[str, Any]) -> bool:
    """The served entry hashes, after the one before it, to the chain hash it carries
    (docs/audit-format.md): the log's chain, which ``audit verify`` and the signed
    checkpoints cover, holds this entry and no other."""
    content = {k: v for k, v in entry.items() if k not in ("prev_hash", "hash")}
    try:
        previous = bytes.fromhex(str(entry["prev_hash"]))
    except (KeyError, ValueError):
        return False
    return hashlib.sha256(previous + leaf_hash(canonical_json(content))).hexdigest() \
        == entry.get("hash")
