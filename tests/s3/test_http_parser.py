"""The HTTP shell (s3gw/http.py) against hostile and unusual input, in process over a memory
stream: what llhttp refuses is answered 400 and the connection closed without the handler
running; framing that is legal (pipelining, chunked bodies, 100-continue, HTTP/1.0, HEAD)
is served."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator

import pytest
import trio
import trio.testing

from s3gw import http

MAX_HEADER = 4096
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"


class Served:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []


def _error(code: str) -> http.Response:
    return http.Response(400, [("X-Code", code)], code.encode(), close=True)


def exchange(pieces: list[bytes], handler: http.Handler | None = None,
             header_timeout: float = 5.0) -> tuple[bytes, Served]:
    """Send `pieces` (a short pause between them), then read until the server closes."""
    served = Served()

    async def echo(req: http.Request) -> http.Response:
        data = b"".join([p async for p in req.body.chunks()])
        served.requests.append((req.method, req.target, data))
        return http.Response(200, [("X-Seen", str(len(data)))], b"ok:" + data)

    async def main() -> bytes:
        server, client = trio.testing.memory_stream_pair()
        state = http.ServerState(10, 10)
        out = bytearray()
        async with trio.open_nursery() as n:
            n.start_soon(lambda: http.serve_connection(
                server, handler or echo, _error, state, max_header=MAX_HEADER, header_timeout=header_timeout,
                request_timeout=2.0, idle_timeout=0.5))
            for p in pieces:
                try:
                    await client.send_all(p)
                except trio.BrokenResourceError:
                    break  # the server closed: what it answered is read below
                await trio.sleep(0.01)
            with trio.fail_after(20):
                while data := await client.receive_some(65536):
                    out += data
            await client.aclose()
        return bytes(out)

    return trio.run(main), served


def _statuses(out: bytes) -> list[bytes]:
    return re.findall(rb"HTTP/1\.1 (\d{3}) ", out)


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * MAX_HEADER + b"\r\n\r\n",  # whole, in one read
])
def test_header_block_over_the_cap_arriving_whole(raw: bytes) -> None:
    out, served = exchange([raw])
    assert out.startswith(b"HTTP/1.1 400") and b"X-Code: RequestHeaderSectionTooLarge" in out
    assert b"Connection: close" in out and served.requests == []


def test_header_block_over_the_cap_still_incomplete() -> None:
    """A header line that never ends is refused once its bytes pass the cap."""
    pieces = [b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: "] + [b"a" * 1000] * 8
    out, served = exchange(pieces)
    assert out.startswith(b"HTTP/1.1 400") and b"X-Code: RequestHeaderSectionTooLarge" in out
    assert served.requests == []


def test_header_block_just_under_the_cap_is_served() -> None:
    out, served = exchange([b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * (MAX_HEADER - 200) + b"\r\n\r\n"])
    assert _statuses(out) == [b"200"] and len(served.requests) == 1


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n",  # a control character in a value
    b"GET / HTTP/1.1\r\nHost: h\r\nX\x00Y: b\r\n\r\n",  # NUL in a name
    b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: b\r\n\r\n",  # a space in a name
    b"G@T / HTTP/1.1\r\nHost: h\r\n\r\n",  # not a method
    b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",  # a space in the target
    b"GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n",  # DEL in the target
    b"GET / HTTP/9.9\r\n\r\n",  # no such version
    b"NOT-HTTP\r\n\r\n",
    b"\xff\xfe\r\n\r\n",
])
def test_malformed_heads_are_400_and_closed(raw: bytes) -> None:
    out, served = exchange([raw])
    assert out.startswith(b"HTTP/1.1 400") and b"X-Code: InvalidRequest" in out, out[:120]
    assert b"Connection: close" in out and served.requests == []


@pytest.mark.parametrize("raw", [
    # smuggling: both framings, in either order, and a second, different length
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + SMUGGLED,
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nContent-Length: 30\r\n\r\nabcd" + SMUGGLED,
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -4\r\n\r\nabcd",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4x\r\n\r\nabcd",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
])
def test_ambiguous_framing_is_refused(raw: bytes) -> None:
    out, served = exchange([raw])
    assert out.startswith(b"HTTP/1.1 400"), out[:120]
    assert all(target != "/smuggled" for _, target, _ in served.requests)
    assert b"/smuggled" not in out


@pytest.mark.parametrize("chunks", [
    b"zz\r\nabc\r\n0\r\n\r\n",  # not hex
    b"3\r\nabcdef\r\n0\r\n\r\n",  # longer than its size
    b"fffffffffffffffffffff\r\n",  # a size past 64 bits
])
def test_bad_chunk_sizes_are_answered_400_never_200(chunks: bytes) -> None:
    out, _ = exchange([b"PUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", chunks])
    assert _statuses(out) == [b"400"], out[:200]
    assert b"X-Code: InvalidRequest" in out and b"Connection: close" in out


def test_chunked_body_and_pipelining() -> None:
    out, served = exchange([
        b"PUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        b"PUT /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nxyGET /c HTTP/1.1\r\nHost: h\r\n\r\n"])
    assert served.requests == [("PUT", "/a", b"abcde"), ("PUT", "/b", b"xy"), ("GET", "/c", b"")]
    assert _statuses(out) == [b"200"] * 3 and out.count(b"ok:abcde") == 1


def test_expect_100_is_sent_only_when_the_body_is_read() -> None:
    async def refuse(req: http.Request) -> http.Response:
        return http.Response(404, [], b"no")

    out, _ = exchange([b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"], refuse)
    assert out.startswith(b"HTTP/1.1 404") and b"100 Continue" not in out and b"Connection: close" in out
    out, served = exchange([b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
                            b"hello"])
    assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200") and served.requests[0][2] == b"hello"


def test_expect_100_without_a_body_still_gets_its_100_and_keeps_the_connection() -> None:
    # RFC 9110 lets a server skip the 100 when the framing says no body follows, but botocore then
    # misreads the next response on the connection (an aws CLI sync of an empty file stalled 60 s)
    out, served = exchange([b"PUT /e HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n",
                            b"PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n", b"xy"])
    assert served.requests == [("PUT", "/e", b""), ("PUT", "/f", b"xy")]
    assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert out.count(b"HTTP/1.1 100 Continue\r\n\r\n") == 2 and _statuses(out) == [b"100", b"200"] * 2
    # without the expectation, no interim response
    out, _ = exchange([b"PUT /e HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"])
    assert out.startswith(b"HTTP/1.1 200") and b"100 Continue" not in out


def test_http10_and_connection_close_end_the_connection() -> None:
    for raw in (b"GET / HTTP/1.0\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"):
        out, served = exchange([raw])
        assert _statuses(out) == [b"200"] and b"Connection: close" in out and len(served.requests) == 1


def test_head_has_no_body_and_streamed_bodies_are_framed() -> None:
    async def stream(req: http.Request) -> http.Response:
        async def gen() -> AsyncGenerator[bytes, None]:
            yield b"abc"
            yield b"defg"
        if req.target == "/sized":
            return http.Response(200, [("Content-Length", "7")], gen())
        return http.Response(200, [], gen())

    out, _ = exchange([b"HEAD /sized HTTP/1.1\r\nHost: h\r\n\r\nGET /sized HTTP/1.1\r\nHost: h\r\n\r\n"
                       b"GET /chunked HTTP/1.1\r\nHost: h\r\n\r\n"], stream)
    heads = out.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert b"Content-Length: 7\r\n" in heads[0] and heads[0].endswith(b"\r\n\r\n")  # HEAD: no body
    assert heads[1].endswith(b"\r\n\r\nabcdefg")
    assert b"Transfer-Encoding: chunked" in heads[2] and heads[2].endswith(b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")


def test_large_streamed_pieces_are_framed_as_small_ones() -> None:
    # a piece over http.COALESCE_BYTES is written apart from the head and the chunk framing
    big, small = bytes(range(256)) * 400, b"tail"

    async def stream(req: http.Request) -> http.Response:
        async def gen() -> AsyncGenerator[bytes, None]:
            yield big
            yield small
            yield big
        if req.target == "/sized":
            return http.Response(200, [("Content-Length", str(2 * len(big) + len(small)))], gen())
        return http.Response(200, [], gen())

    assert len(big) > http.COALESCE_BYTES
    out, _ = exchange([b"GET /sized HTTP/1.1\r\nHost: h\r\n\r\nGET /chunked HTTP/1.1\r\nHost: h\r\n\r\n"], stream)
    heads = out.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert heads[0].split(b"\r\n\r\n", 1)[1] == big + small + big
    framed = b"%x\r\n%s\r\n4\r\ntail\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(big), big, len(big), big)
    assert heads[1].split(b"\r\n\r\n", 1)[1] == framed


def test_a_response_header_with_a_line_break_is_never_sent() -> None:
    async def inject(req: http.Request) -> http.Response:
        return http.Response(200, [("X-Meta", "a\r\nSet-Cookie: evil=1")], b"x")

    out, _ = exchange([b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"], inject)
    assert b"Set-Cookie" not in out


def test_trickled_head_is_cut_at_the_header_deadline() -> None:
    out, served = exchange([b"GET / HTTP/1.1\r\nHost: h\r\n"] + [b"X"] * 5, header_timeout=0.3)
    assert out.startswith(b"HTTP/1.1 400") and b"X-Code: RequestTimeout" in out and served.requests == []


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\nhost: a\r\n\r\n",  # the same host twice is two all the same
    b"GET / HTTP/1.1\r\nX: y\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\n\r\n",  # the second request has none
])
def test_http11_needs_one_host_header(raw: bytes) -> None:
    """RFC 9112 3.2: 400 for an HTTP/1.1 request without a Host or with more than one."""
    out, served = exchange([raw])
    assert _statuses(out)[-1] == b"400" and b"X-Code: InvalidRequest" in out, out[:200]
    assert len(served.requests) == raw.count(b"HTTP/1.1") - 1


def test_http10_may_leave_out_host() -> None:
    out, served = exchange([b"GET / HTTP/1.0\r\n\r\n"])
    assert _statuses(out) == [b"200"] and len(served.requests) == 1
