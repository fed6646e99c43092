"""aws-chunked body decoding (sans-IO): the framing never reaches the object.

Three modes share one framing, `hex-size[;chunk-signature=SIG]\\r\\n DATA \\r\\n ... 0...\\r\\n`,
then either `\\r\\n` or trailer lines and `\\r\\n`:

- STREAMING-AWS4-HMAC-SHA256-PAYLOAD: every chunk, including the final empty one, carries a
  signature chained from the request's seed signature; each is verified when its chunk ends.
- STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: the same, plus trailer lines and a trailer signature.
- STREAMING-UNSIGNED-PAYLOAD-TRAILER: bare chunks and trailer lines (what boto3 sends over TLS).

Every chunk but the last holds at least 8 KiB, as AWS requires (InvalidChunkSizeError).
Chunk data is passed on as it arrives (memory stays bounded whatever the chunk size); a bad
signature surfaces at the chunk's end, which is always before the store's commit point.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field

from .errors import S3Error
from .sigv4 import (
    EMPTY_SHA256,
    STREAMING_SIGNED,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER,
    AuthResult,
    sign,
)

MAX_LINE = 4096
_CHUNK_SIZE = re.compile("[0-9a-fA-F]{1,16}")  # 16 hex digits: 2**64, far past any object
MAX_TRAILER_BYTES = 16 * 1024
# AWS: every chunk but the last holds at least 8 KiB (InvalidChunkSizeError). Tiny chunks would
# otherwise cost a signature check (and a pass of this parser) per few bytes of body.
MIN_CHUNK = 8192

_SIZE, _DATA, _DATA_END, _FINAL_END, _TRAILER, _DONE = range(6)


def chunk_string_to_sign(auth: AuthResult, previous: str, data_sha256_hex: str) -> str:
    return (f"AWS4-HMAC-SHA256-PAYLOAD\n{auth.amz_date}\n{auth.scope}\n{previous}\n"
            f"{EMPTY_SHA256}\n{data_sha256_hex}")


def trailer_string_to_sign(auth: AuthResult, previous: str, trailer_text: str) -> str:
    digest = hashlib.sha256(trailer_text.encode()).hexdigest()
    return f"AWS4-HMAC-SHA256-TRAILER\n{auth.amz_date}\n{auth.scope}\n{previous}\n{digest}"


@dataclass
class AwsChunkedDecoder:
    mode: str
    auth: AuthResult | None = None  # required for the signed modes
    decoded_length: int | None = None  # x-amz-decoded-content-length, checked at the end
    trailers: dict[str, str] = field(default_factory=dict)
    _state: int = _SIZE
    _buf: bytearray = field(default_factory=bytearray)
    _remaining: int = 0
    _chunk_sig: str = ""
    _previous: str = ""
    _hash: hashlib._Hash | None = None  # over the current chunk's data (signed modes)
    _trailer_lines: list[str] = field(default_factory=list)
    _trailer_bytes: int = 0
    _chunks: int = 0  # data chunks begun
    _last_size: int = MIN_CHUNK  # the previous data chunk's size

    def __post_init__(self) -> None:
        if self.mode not in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER):
            raise S3Error("InvalidArgument", f"Unsupported streaming mode {self.mode}")
        self.signed = self.mode != STREAMING_UNSIGNED_TRAILER
        self.has_trailer = self.mode != STREAMING_SIGNED
        if self.signed:
            if self.auth is None:
                raise S3Error("AccessDenied")
            self._previous = self.auth.signature

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes) -> list[bytes]:
        """Consume raw body bytes; return the decoded payload pieces they completed."""
        out: list[bytes] = []
        view = memoryview(data)
        pos = 0
        n = len(view)
        while pos < n:
            if self._state == _DATA:
                take = min(self._remaining, n - pos)
                piece = bytes(view[pos : pos + take])
                pos += take
                self._remaining -= take
                if self._hash is not None:
                    self._hash.update(piece)
                out.append(piece)
                if self._remaining == 0:
                    self._end_chunk_data(last=False)
                continue
            if self._state == _DONE:
                raise S3Error("InvalidRequest", "Unexpected data after the final aws-chunked chunk.")
            nl = data.find(b"\n", pos)
            if nl < 0:
                self._buf += view[pos:]
                if len(self._buf) > MAX_LINE:
                    raise S3Error("InvalidRequest", "An aws-chunked line is too long.")
                return out
            self._buf += view[pos:nl + 1]
            pos = nl + 1
            if len(self._buf) > MAX_LINE:
                raise S3Error("InvalidRequest", "An aws-chunked line is too long.")
            line = bytes(self._buf[:-1]).rstrip(b"\r")
            self._buf.clear()
            self._line(line)
        return out

    def _line(self, line: bytes) -> None:
        if self._state == _SIZE:
            self._size_line(line)
        elif self._state == _DATA_END:
            if line:
                raise S3Error("IncompleteBody", "An aws-chunked chunk is longer than its declared size.")
            self._state = _SIZE
        elif self._state == _FINAL_END:
            if line:
                raise S3Error("InvalidRequest", "Malformed end of aws-chunked body.")
            self._state = _DONE
        elif self._state == _TRAILER:
            self._trailer_line(line)

    def _size_line(self, line: bytes) -> None:
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            raise S3Error("InvalidRequest", "Malformed aws-chunked chunk header.") from None
        size_text, _, ext = text.partition(";")
        # hex digits only: int(_, 16) also takes "0x10", "+10", "1_0" and "-0" (a chunk
        # signature covers the data, not this line, so any of them passed)
        if not _CHUNK_SIZE.fullmatch(size_text.strip()):
            raise S3Error("InvalidRequest", "Malformed aws-chunked chunk size.")
        size = int(size_text, 16)
        if size and self._last_size < MIN_CHUNK:  # the previous chunk was small and not the last
            raise S3Error("InvalidChunkSizeError", Chunk=str(self._chunks), BadChunkSize=str(self._last_size))
        if size:
            self._chunks += 1
            self._last_size = size
        if self.signed:
            name, _, sig = ext.partition("=")
            if name.strip() != "chunk-signature" or len(sig.strip()) != 64:
                raise S3Error("SignatureDoesNotMatch", "A chunk signature is missing or malformed.")
            self._chunk_sig = sig.strip().lower()
            self._hash = hashlib.sha256()
        self._remaining = size
        if size == 0:
            self._end_chunk_data(last=True)
        else:
            self._state = _DATA

    def _end_chunk_data(self, *, last: bool) -> None:
        if self.signed:
            assert self.auth is not None and self._hash is not None
            digest = self._hash.hexdigest()
            expected = sign(self.auth.signing_key, chunk_string_to_sign(self.auth, self._previous, digest))
            if not hmac.compare_digest(expected, self._chunk_sig):
                raise S3Error("SignatureDoesNotMatch", "The chunk signature does not match.")
            self._previous = expected
            self._hash = None
        if not last:
            self._state = _DATA_END
        else:  # the zero-length chunk: what follows is the end or the trailer
            self._state = _TRAILER if self.has_trailer else _FINAL_END

    def _trailer_line(self, line: bytes) -> None:
        if line:
            self._trailer_bytes += len(line)
            if self._trailer_bytes > MAX_TRAILER_BYTES:
                raise S3Error("InvalidRequest", "The aws-chunked trailer is too large.")
            try:
                self._trailer_lines.append(line.decode("ascii"))
            except UnicodeDecodeError:
                raise S3Error("InvalidRequest", "Malformed aws-chunked trailer.") from None
            return
        signature = ""
        signed_lines: list[str] = []
        for text in self._trailer_lines:
            name, colon, value = text.partition(":")
            if not colon:
                raise S3Error("InvalidRequest", "Malformed aws-chunked trailer.")
            name = name.strip().lower()
            if name == "x-amz-trailer-signature":
                signature = value.strip().lower()
                continue
            self.trailers[name] = value.strip()
            signed_lines.append(text)
        if self.signed:
            assert self.auth is not None
            if not signature:
                raise S3Error("SignatureDoesNotMatch", "The trailer signature is missing.")
            candidates = ("".join(f"{t}\n" for t in signed_lines), "".join(f"{t}\r\n" for t in signed_lines))
            for text in candidates:
                expected = sign(self.auth.signing_key, trailer_string_to_sign(self.auth, self._previous, text))
                if hmac.compare_digest(expected, signature):
                    break
            else:
                raise S3Error("SignatureDoesNotMatch", "The trailer signature does not match.")
        self._state = _DONE

    def finish(self, decoded_total: int) -> dict[str, str]:
        """The raw body ended: it must have ended exactly at the end of the framing."""
        if self._state != _DONE:
            raise S3Error("IncompleteBody", "The aws-chunked body ended before its final chunk.")
        if self.decoded_length is not None and decoded_total != self.decoded_length:
            raise S3Error("IncompleteBody", "The decoded body length does not match x-amz-decoded-content-length.")
        return self.trailers
