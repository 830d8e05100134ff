"""Tink-compatible AES-GCM-HKDF streaming AEAD (segmented, random access).

Wire format (Tink "AES-GCM-HKDF streaming"):

    header  = len(header) || salt (derived_key_size) || nonce_prefix (7)
    key     = HKDF(hash, ikm=DEK, salt=salt, info=associated_data, L=derived_key_size)
    segment i = AES-GCM(key, nonce_prefix || uint32_be(i) || last_flag, M_i), no GCM AAD

Segment 0 carries ``segment_size - len(header) - 16`` plaintext bytes, later ones
``segment_size - 16``. Only the final segment is sealed with ``last_flag = 1``, so a
truncated blob, reordered segments or a swapped blob (other associated data) fail.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from storage.errors import BlobAuthenticationError

# What a blob read hands over.
ReadBuffer = bytes | bytearray | memoryview

NONCE_PREFIX_SIZE = 7
TAG_SIZE = 16


@dataclass(frozen=True)
class StreamingParams:
    derived_key_size: int = 32
    segment_size: int = 64 * 1024
    hash_name: str = "sha256"

    @property
    def header_size(self) -> int:
        return 1 + self.derived_key_size + NONCE_PREFIX_SIZE

    @property
    def first_plaintext_size(self) -> int:
        return self.segment_size - self.header_size - TAG_SIZE

    @property
    def plaintext_segment_size(self) -> int:
        return self.segment_size - TAG_SIZE

    def segment_count(self, plaintext_size: int) -> int:
        if plaintext_size <= self.first_plaintext_size:
            return 1
        rest = plaintext_size - self.first_plaintext_size
        return 1 + -(-rest // self.plaintext_segment_size)

    def ciphertext_size(self, plaintext_size: int) -> int:
        return self.header_size + plaintext_size + self.segment_count(plaintext_size) * TAG_SIZE

    def segment_of(self, plaintext_offset: int) -> int:
        """Index of the segment holding the plaintext byte at ``plaintext_offset``."""
        if plaintext_offset < self.first_plaintext_size:
            return 0
        return 1 + (plaintext_offset - self.first_plaintext_size) // self.plaintext_segment_size

    def plaintext_start(self, segment: int) -> int:
        if segment == 0:
            return 0
        return self.first_plaintext_size + (segment - 1) * self.plaintext_segment_size

    def ciphertext_start(self, segment: int) -> int:
        if segment == 0:
            return self.header_size
        return self.segment_size * segment

    def ciphertext_span(self, first: int, last: int, plaintext_size: int) -> tuple[int, int]:
        """(offset, length) of segments ``first..last`` inclusive in the blob."""
        start = self.ciphertext_start(first)
        end = min(self.ciphertext_start(last + 1), self.ciphertext_size(plaintext_size))
        return start, end - start


DEFAULT_PARAMS = StreamingParams()


def _hash(name: str) -> hashes.HashAlgorithm:
    # SHA-1 is here only so Tink's published HKDF-SHA1 test vector can be checked; the
    # service itself always uses SHA-256 (DEFAULT_PARAMS).
    algorithms = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256(),  # noqa: S303
                  "sha512": hashes.SHA512()}
    return algorithms[name]


def _derive(params: StreamingParams, dek: bytes, salt: bytes, associated_data: bytes) -> AESGCM:
    key = HKDF(
        algorithm=_hash(params.hash_name),
        length=params.derived_key_size,
        salt=salt,
        info=associated_data,
    ).derive(dek)
    return AESGCM(key)


def _nonce(prefix: bytes, segment: int, last: bool) -> bytes:
    return prefix + struct.pack(">I", segment) + (b"\x01" if last else b"\x00")


class SegmentEncrypter:
    """Encrypts a stream pushed in arbitrary chunks; holds at most one segment."""

    def __init__(
        self, dek: bytes, associated_data: bytes, params: StreamingParams = DEFAULT_PARAMS
    ) -> None:
        self._params = params
        salt = os.urandom(params.derived_key_size)
        self._prefix = os.urandom(NONCE_PREFIX_SIZE)
        self._aead = _derive(params, dek, salt, associated_data)
        self.header = bytes([params.header_size]) + salt + self._prefix
        self._pending = bytearray()
        self._segment = 0
        self._finished = False

    def _capacity(self) -> int:
        p = self._params
        return p.first_plaintext_size if self._segment == 0 else p.plaintext_segment_size

    def _seal(self, data: ReadBuffer, last: bool) -> bytes:
        sealed = self._aead.encrypt(_nonce(self._prefix, self._segment, last), data, None)
        self._segment += 1
        return sealed

    def update(self, data: ReadBuffer) -> list[bytes]:
        """Returns the sealed segments that ``data`` completes.

        A full segment is kept back until more data arrives, because only then is it
        known not to be the last one. Segments are sealed straight from ``data``: only a
        segment that straddles two calls is copied.
        """
        if self._finished:
            raise RuntimeError("encrypter already finished")
        view = memoryview(data)
        sealed: list[bytes] = []
        if self._pending:
            room = self._capacity() - len(self._pending)
            if len(view) <= room:
                self._pending += view
                return sealed
            self._pending += view[:room]
            view = view[room:]
            sealed.append(self._seal(self._pending, last=False))
            self._pending = bytearray()
        while len(view) > self._capacity():
            size = self._capacity()
            sealed.append(self._seal(view[:size], last=False))
            view = view[size:]
        self._pending += view
        return sealed

    def finish(self) -> bytes:
        self._finished = True
        sealed = self._seal(self._pending, last=True)
        self._pending = bytearray()
        return sealed


class SegmentDecrypter:
    """Random-access decryption of a blob whose plaintext length is known."""

    def __init__(
        self,
        dek: bytes,
        associated_data: bytes,
        header: bytes,
        plaintext_size: int,
        params: StreamingParams = DEFAULT_PARAMS,
    ) -> None:
        if len(header) != params.header_size or header[0] != params.header_size:
            raise BlobAuthenticationError("blob header is malformed")
        self._params = params
        self._prefix = header[1 + params.derived_key_size :]
        self._aead = _derive(params, dek, header[1 : 1 + params.derived_key_size], associated_data)
        self.plaintext_size = plaintext_size
        self.last_segment = params.segment_count(plaintext_size) - 1

    def decrypt_segment(self, index: int, ciphertext: ReadBuffer) -> bytes:
        out = bytearray(self._expected_length(index))
        self._decrypt_into(index, ciphertext, memoryview(out))
        return bytes(out)

    def _decrypt_into(self, index: int, ciphertext: ReadBuffer, out: memoryview) -> None:
        if len(ciphertext) != len(out) + TAG_SIZE:
            raise BlobAuthenticationError(f"segment {index} has the wrong length")
        nonce = _nonce(self._prefix, index, index == self.last_segment)
        try:
            self._aead.decrypt_into(nonce, ciphertext, None, out)
        except InvalidTag:
            raise BlobAuthenticationError(f"segment {index} failed authentication") from None

    def _expected_length(self, index: int) -> int:
        p = self._params
        if index == self.last_segment:
            return self.plaintext_size - p.plaintext_start(index)
        return p.first_plaintext_size if index == 0 else p.plaintext_segment_size

    def decrypt_span(self, first: int, span: ReadBuffer) -> bytearray:
        """Decrypts consecutive segments starting at ``first`` read as one span.

        The plaintext goes straight into one buffer (no copy per segment, no join): at
        streaming rates the copies, not AES-GCM, were the cost.
        """
        p = self._params
        ciphertext = memoryview(span)
        plan = []
        pos, index = 0, first
        while pos < len(ciphertext):
            if index > self.last_segment:
                raise BlobAuthenticationError("blob has segments past its end")
            size = p.segment_size - (p.header_size if index == 0 else 0)
            plan.append((index, ciphertext[pos : pos + size], self._expected_length(index)))
            pos += size
            index += 1
        out = bytearray(sum(length for _, _, length in plan))
        view = memoryview(out)
        written = 0
        for index, chunk, length in plan:
            self._decrypt_into(index, chunk, view[written : written + length])
            written += length
        return out


def encrypt(
    dek: bytes, associated_data: bytes, plaintext: bytes, params: StreamingParams = DEFAULT_PARAMS
) -> bytes:
    """Whole-message helper (tests, small payloads)."""
    enc = SegmentEncrypter(dek, associated_data, params)
    return b"".join([enc.header, *enc.update(plaintext), enc.finish()])


def decrypt(
    dek: bytes,
    associated_data: bytes,
    ciphertext: bytes,
    plaintext_size: int,
    params: StreamingParams = DEFAULT_PARAMS,
) -> bytes:
    if len(ciphertext) != params.ciphertext_size(plaintext_size):
        raise BlobAuthenticationError("blob has the wrong length")
    dec = SegmentDecrypter(
        dek, associated_data, ciphertext[: params.header_size], plaintext_size, params
    )
    return bytes(dec.decrypt_span(0, memoryview(ciphertext)[params.header_size :]))
