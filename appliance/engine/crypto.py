"""Envelope encryption of segments: AES-256-GCM per block, applied before erasure coding.

Keys come from outside: the engine never imports appliance.iam. A write is handed a SegmentKey,
the plaintext data key and the opaque envelope persisted beside the segment (in its
SegmentRecord and in every shard header): the data key wrapped by the master key, a KMS key or
an SSE-C customer key, plus whatever its maker needs to unwrap it again. A read is handed a
KeyResolver that turns an envelope back into the data key, raising the error its caller chose
(a missing SSE-C key, a disabled KMS key). Nothing the engine stores decrypts without them.

Layout. The plaintext is cut into blocks of `block_size - TAG` bytes and each is sealed into
exactly `block_size` bytes (ciphertext and its 16-byte tag; the last block is shorter), so an
encrypted segment has the erasure-coding geometry, chunk offsets and healing of an unencrypted
one of the same stored length, and the shard files hold ciphertext only.

Keys and nonces. The block key is HMAC-SHA256(data key, label | segment id) (HKDF-Expand of
one block: the data key is uniformly random, so no Extract step), so even a data key handed in
for two segments never encrypts both under one key; the nonce is the block index. A (key,
nonce) pair is therefore never reused: a segment is written once and never modified, and
healing and moves copy or recompute ciphertext without the key.

Associated data: FORMAT_TAG | segment id | u64 block index | u8 final-block flag. A block moved to
another index or segment fails authentication, and so does a segment cut short (its new last
block was sealed as not final) or extended.
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

TAG = 16
KEY_BYTES = 32
FORMAT_TAG = b"stowage-seg-v1\x00"
_INFO = b"stowage segment block key v1\x00"
_ETAG_INFO = b"stowage segment etag key v1\x00"
_AAD_TAIL = struct.Struct(">QB")


@dataclass(frozen=True, eq=False)
class SegmentKey:
    """What a write is encrypted with: a fresh random data key and its envelope. One per write:
    drop it when the write is done (key managers may track the live ones).

    `envelope` is stored as given (JSON-able, never holding the plaintext key). `opaque_etag`:
    the object's ETag is not the plaintext MD5 (S3 does this for SSE-C and SSE-KMS objects)
    but a keyed digest of it that reveals nothing without the data key.
    """

    data_key: bytes = field(repr=False)
    envelope: dict[str, Any]
    opaque_etag: bool = False

    def __post_init__(self) -> None:
        if len(self.data_key) != KEY_BYTES:
            raise ValueError("a segment data key is 32 bytes")


# envelope -> data key; raises the caller's error when it cannot (missing or wrong SSE-C key,
# disabled KMS key, master key that does not open the envelope).
KeyResolver = Callable[[dict[str, Any]], bytes]


def _derive(data_key: bytes, info: bytes, segment_id: str) -> bytes:
    # HKDF-Expand (RFC 5869) for one 32-byte block: HMAC(PRK, info | 0x01). hmac.new, not the
    # one-shot hmac.digest: that one releases the GIL whatever the length, and on the loop under
    # load each release cost ~100 us of waiting for it back (hmac.new keeps it below 2 KiB)
    return hmac.new(data_key, info + segment_id.encode() + b"\x01", "sha256").digest()


class SegmentCipher:
    """Seals and opens the blocks of one segment."""

    def __init__(self, data_key: bytes, segment_id: str) -> None:
        self.segment_id = segment_id
        self._block_key = _derive(data_key, _INFO, segment_id)
        self._aead = AESGCM(self._block_key)
        self._data_key = data_key
        self._aad_head = FORMAT_TAG + segment_id.encode() + b"\x00"

    def _aad(self, index: int, final: bool) -> bytes:
        return self._aad_head + _AAD_TAIL.pack(index, 1 if final else 0)

    @staticmethod
    def _nonce(index: int) -> bytes:
        return index.to_bytes(12, "big")

    def seal(self, index: int, block: bytes, final: bool) -> bytes:
        return self._aead.encrypt(self._nonce(index), block, self._aad(index, final))

    def open(self, index: int, block: bytes | memoryview, final: bool) -> bytes | None:
        """The plaintext of a stored block, or None when it fails authentication."""
        try:
            return self._aead.decrypt(self._nonce(index), block, self._aad(index, final))
        except InvalidTag:
            return None

    def open_parts_into(self, index: int, parts: Sequence[memoryview], final: bool, out: memoryview) -> bool:
        """`open` of a stored block held in pieces (its data chunks, as read: concatenated they
        are the block, ciphertext then tag, and nothing after) into `out` (the block's length
        less TAG): the pieces are decrypted where they lie, not first joined into one buffer
        (a copy of every byte a large GET sends). False when the block fails authentication;
        `out` is then zeroed, so it never holds plaintext that was not authentic."""
        size = sum(len(p) for p in parts) - TAG
        if size < 0 or len(out) != size:
            raise ValueError(f"block pieces of {size + TAG} bytes for a {len(out)}-byte plaintext")
        tail = b"".join(bytes(p) for p in _last_bytes(parts, TAG))
        dec = Cipher(algorithms.AES(self._block_key), modes.GCM(self._nonce(index), tail)).decryptor()
        dec.authenticate_additional_data(self._aad(index, final))
        pos = 0
        try:
            for part in parts:
                take = min(len(part), size - pos)
                if take <= 0:
                    break
                # GCM is a stream mode: the output is exactly as long as the input (cryptography
                # >= 44 accepts an output buffer of that length)
                pos += dec.update_into(part[:take], out[pos:pos + take])
            dec.finalize()
        except InvalidTag:
            out[:] = bytes(len(out))
            return False
        return True

    def opaque_etag(self, md5_hex: str) -> str:
        """A 32-hex-digit ETag that is not the plaintext MD5 and does not reveal it."""
        key = _derive(self._data_key, _ETAG_INFO, self.segment_id)
        return hmac.new(key, bytes.fromhex(md5_hex), "sha256").hexdigest()[:32]


def _last_bytes(parts: Sequence[memoryview], n: int) -> list[memoryview]:
    """The views holding the last `n` bytes of the pieces, in order."""
    out: list[memoryview] = []
    for part in reversed(parts):
        if n <= 0:
            break
        out.append(part[max(0, len(part) - n):])
        n -= len(out[-1])
    return out[::-1]


def plain_block_size(block_size: int) -> int:
    return block_size - TAG


def plain_length(stored: int, block_size: int) -> int:
    """Plaintext bytes of an encrypted segment storing `stored` bytes (every block has a tag)."""
    return stored - TAG * -(-stored // block_size)
