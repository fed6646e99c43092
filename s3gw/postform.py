"""The multipart/form-data body of a POST Object, streamed: fields first, then the file.

Parsing is python-multipart's push parser (the streaming parser Starlette and others use);
this module only feeds it the request body piece by piece and sorts its callbacks into form
fields and file data. Memory stays bounded: everything before the file (field names, values
and part headers) is capped at MAX_PRE_DATA bytes (AWS's limit, MaxPostPreDataLengthExceeded),
and file data is handed on piece by piece as it arrives. Fields after the file are ignored, as
AWS ignores them; the body after the file is read on (up to TRAILING_LIMIT) only to keep the
connection usable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from .errors import S3Error

MAX_PRE_DATA = 20 * 1024  # AWS: the fields before the file, part headers included
MAX_BOUNDARY = 70  # RFC 2046
TRAILING_LIMIT = 64 * 1024


def boundary_of(content_type: str) -> bytes:
    """The boundary of a multipart/form-data Content-Type; 412 PreconditionFailed for any other
    type, as AWS answers a POST to a bucket that is not a form upload."""
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold",
                      Condition="Bucket POST must be of the enclosure-type multipart/form-data")
    boundary = params.get(b"boundary", b"")
    if not boundary or len(boundary) > MAX_BOUNDARY:
        raise S3Error("MalformedPOSTRequest")
    return boundary


def _malformed() -> S3Error:
    return S3Error("MalformedPOSTRequest")


@dataclass
class _Part:
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    name: str = ""
    filename: str | None = None
    content_type: str = ""
    value: bytearray = field(default_factory=bytearray)


class FormReader:
    """Feed the body with `read_fields()`, then take the file with `file_data()`."""

    def __init__(self, boundary: bytes, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self.fields: dict[str, str] = {}  # lower-case name -> value
        self.filename: str | None = None  # the file part's filename (None: no file part yet)
        self.file_content_type = ""
        self._part: _Part | None = None
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._pre = 0  # bytes counted against MAX_PRE_DATA
        self._in_file = False
        self._file_done = False
        self._ended = False
        self._pending: list[bytes] = []
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._begin, "on_part_data": self._data, "on_part_end": self._end_part,
            "on_header_field": self._hname, "on_header_value": self._hvalue, "on_header_end": self._hend,
            "on_headers_finished": self._headers_done, "on_end": self._end,
        })

    # --- parser callbacks ---------------------------------------------------------------------

    def _count(self, n: int) -> None:
        if self._in_file or self._file_done:
            return
        self._pre += n
        if self._pre > MAX_PRE_DATA:
            raise S3Error("MaxPostPreDataLengthExceeded",
                          "Your POST request fields preceeding the upload file was too large.")

    def _begin(self) -> None:
        self._part = _Part()

    def _hname(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self._header_name += data[start:end]

    def _hvalue(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self._header_value += data[start:end]

    def _hend(self) -> None:
        assert self._part is not None
        self._part.headers.append((bytes(self._header_name).lower(), bytes(self._header_value)))
        self._header_name.clear()
        self._header_value.clear()

    def _headers_done(self) -> None:
        part = self._part
        assert part is not None
        for name, value in part.headers:
            if name == b"content-disposition":
                kind, params = parse_options_header(value)
                if kind != b"form-data" or b"name" not in params:
                    raise _malformed()
                part.name = _text(params[b"name"]).lower()
                if b"filename" in params:
                    part.filename = _text(params[b"filename"])
            elif name == b"content-type":
                part.content_type = _text(value)
        if not part.name:
            raise _malformed()
        if self._file_done:
            return
        if part.name == "file":
            self._in_file = True
            self.filename = part.filename or ""
            self.file_content_type = part.content_type

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._pending.append(bytes(data[start:end]))
        elif not self._file_done:
            assert self._part is not None
            self._count(end - start)
            self._part.value += data[start:end]

    def _end_part(self) -> None:
        part = self._part
        self._part = None
        if part is None or self._file_done:
            return
        if self._in_file:
            self._in_file, self._file_done = False, True
            return
        if part.name in self.fields:
            raise S3Error("InvalidArgument", f"The form field {part.name[:64]} appears more than once.",
                          ArgumentName=part.name[:64])
        self.fields[part.name] = _text(bytes(part.value))

    def _end(self) -> None:
        self._ended = True

    # --- feeding ------------------------------------------------------------------------------

    async def _feed(self) -> int:
        """One more piece of the body into the parser: its size (IncompleteBody when the body
        ends before the form does)."""
        try:
            piece = await self._chunks.__anext__()
        except StopAsyncIteration:
            raise S3Error("IncompleteBody", "The POST body ended before its closing boundary.") from None
        try:
            self._parser.write(piece)
        except MultipartParseError:
            raise _malformed() from None
        return len(piece)

    async def read_fields(self) -> None:
        """Read up to the start of the file's data (or the end of the body). The fields are then
        in `fields`; `filename` is None when there was no file part."""
        while not self._in_file and not self._file_done and not self._ended:
            await self._feed()

    async def file_data(self) -> AsyncIterator[bytes]:
        """The file's bytes as they arrive; then the rest of the body is read and dropped."""
        while True:
            while self._pending:
                yield self._pending.pop(0)
            if self._file_done:
                break
            await self._feed()
        await self._drain()

    async def _drain(self) -> None:
        read = 0
        while not self._ended and read <= TRAILING_LIMIT:
            read += await self._feed()


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise S3Error("InvalidArgument", "A form field is not valid UTF-8.") from None
