"""Pipelined reads of one SFTP file, sent and received on the caller's thread.

Why not paramiko's own `readv`/`prefetch`: they send the read requests
from a thread of their own, and in paramiko 5.1 that thread
- with a cap on the requests in flight, waits in a 10 ms sleep loop. The
  reader can take every answer before the next request goes out; paramiko
  then counts the prefetch as done and reads the rest one synchronous
  request at a time (paramiko#2519): 256 MiB took 11.6 s over loopback
  (22 MB/s), against 0.9 s for `tar` over the same SSH server.
- on a dead connection, either dies with a traceback on stderr
  (paramiko#2379), or waits for answers that never come, waking every
  10 ms for as long as the process lives (seen after the host-killed test);
  there is no API to stop it (paramiko#2454).

Here one thread does both: it keeps `window` requests in flight, takes the
answers in file order, writes them out, and stops sending the moment
anything fails. Memory is bounded by window x request size (2 MiB).

It uses the three internal names of `SFTPClient` that paramiko's prefetch
uses (`_async_request`, `_read_response`, `_convert_status`) and the
response protocol (`fileobj._async_response`). They have not changed
since paramiko 1.x; the pinned version is tested against a real sshd
(tests/integration/test_sftp_read.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import paramiko
import paramiko.file
from paramiko.message import Message
from paramiko.sftp import (
    CMD_CLOSE,
    CMD_DATA,
    CMD_HANDLE,
    CMD_OPEN,
    CMD_READ,
    CMD_STATUS,
    SFTP_FLAG_READ,
    SFTPError,
    int64,
)
from paramiko.sftp_attr import SFTPAttributes

__all__ = [
    "REQUEST_BYTES",
    "WINDOW",
    "close_without_waiting",
    "forget",
    "read_pipelined",
    "read_small_files",
]

# 128 KiB per request, 32 in flight (4 MiB, half the channel's window): 256 MiB from a
# loopback OpenSSH server in 0.88-1.05 s, against 1.22 s with 32 KiB x 64 (the size of
# paramiko's and OpenSSH's clients) and 0.85 s for `tar` over SSH. A server that answers
# less (older OpenSSH servers: 64 KiB) is asked the rest, and later requests shrink to fit.
REQUEST_BYTES = 128 * 1024
WINDOW = 32
_SMALLEST_REQUEST = 4096


class _Answers:
    """Receives the answers paramiko routes to it, by request number, until abandoned."""

    def __init__(self) -> None:
        self.by_number: dict[int, tuple[int, Message]] = {}
        self.abandoned = False

    def _async_response(self, kind: int, message: Message, number: int) -> None:
        if not self.abandoned:
            self.by_number[number] = (kind, message)


def read_pipelined(
    sftp: paramiko.SFTPClient,
    handle: paramiko.SFTPFile | bytes,
    size: int,
    write: Callable[[bytes], object],
    *,
    start: int = 0,
    request_bytes: int = REQUEST_BYTES,
    window: int = WINDOW,
) -> int:
    """Write bytes [start, size) of the open file `handle` to `write`, in order; return `size`.

    `handle` is an SFTPFile or the server's handle for the file (bytes).

    Raises EOFError when the file ends before `size` (it shrank while read),
    and paramiko's errors (SSHException, OSError) when the connection fails.
    A server may answer a request with fewer bytes than asked: from then on,
    requests ask no more than it gave, and the rest is asked again in such
    pieces, ahead of the requests already in flight.
    """
    client: Any = sftp  # the internals are not in paramiko's type stubs
    raw_handle = handle if isinstance(handle, bytes) else handle.handle
    answers = _Answers()
    in_flight: deque[tuple[int, int, int]] = deque()  # (request number, offset, length)
    next_offset = start

    def ask(offset: int, length: int) -> int:
        return int(client._async_request(answers, CMD_READ, raw_handle, int64(offset), length))

    try:
        while True:
            while next_offset < size and len(in_flight) < window:
                length = min(request_bytes, size - next_offset)
                in_flight.append((ask(next_offset, length), next_offset, length))
                next_offset += length
            if not in_flight:
                return size
            number, offset, length = in_flight.popleft()
            while number not in answers.by_number:
                client._read_response()
            kind, message = answers.by_number.pop(number)
            if kind == CMD_STATUS:
                client._convert_status(message)  # raises: EOFError at end of file, else OSError
                raise SFTPError("SFTP read answered with a status but no data")
            if kind != CMD_DATA:
                raise SFTPError(f"SFTP read answered with message type {kind}")
            data = message.get_binary()
            if len(data) > length:
                raise SFTPError(f"SFTP read returned {len(data)} bytes for {length} asked")
            if not data:
                raise EOFError
            if len(data) < length:
                request_bytes = min(request_bytes, max(len(data), _SMALLEST_REQUEST))
                gap = range(offset + len(data), offset + length, request_bytes)
                rests = [(start, min(request_bytes, offset + length - start)) for start in gap]
                in_flight.extendleft(reversed([(ask(*rest), *rest) for rest in rests]))
            write(data)
    finally:
        answers.abandoned = True
        answers.by_number.clear()


def forget(handle: paramiko.SFTPFile) -> None:
    """Mark a file of a failed session closed without sending anything.

    Why: paramiko sends a close from `__del__` for a file left open; after
    a failure that send could wait on a stuck server (or, once the session
    is closed, fail), at whatever moment the garbage collector chose.
    `BufferedFile.close` is the part of paramiko's close that sends nothing.
    """
    paramiko.file.BufferedFile.close(handle)


def close_without_waiting(handle: paramiko.SFTPFile) -> None:
    """Close a file read to its end without waiting for the server's answer.

    Why: a small file costs three round trips (open, read, close); the answer
    to a close of a file only read tells nothing, so waiting for it makes a
    tree of small files a third slower. This is what paramiko does for a
    file handle the garbage collector closes. A dead connection is not an
    error here: the read has reported it, or everything was read.
    """
    handle._close(async_=True)  # type: ignore[attr-defined]


@dataclass
class _SmallFile:
    """One small file on its way: its open request, then its read request."""

    path: str
    size: int
    asked: int = -1  # the request answered next: the open, then the read
    handle: bytes | None = None
    result: bytes | Exception | None = None


def read_small_files(
    sftp: paramiko.SFTPClient, files: Sequence[tuple[str, int]], *, window: int = WINDOW
) -> Iterator[tuple[str, bytes | Exception]]:
    """Yield (path, its `size` bytes or its error) for each (path, size) of `files`, in order.

    Why: one file read after another costs two round trips each (open, then
    read; the close is not waited for), so a folder of small files over a
    link with 5 ms of latency moves 100 files per second. Here the opens of
    up to `window` files are in flight at once, and each file's read goes
    out as soon as its handle comes back. Each file is read in one request
    of its listed size (callers pass files of at most REQUEST_BYTES), and
    closed without waiting. A file's own failure is yielded at its turn
    (OSError from the server: no such file, permission denied; EOFError:
    it ended before its listed size), so the caller names it; a failure of
    the session itself is raised.
    """
    client: Any = sftp
    answers = _Answers()
    waiting: deque[_SmallFile] = deque()  # in file order
    by_request: dict[int, _SmallFile] = {}  # the request each file waits on
    upcoming = iter(files)

    def ask(item: _SmallFile, kind: int, *args: object) -> None:
        item.asked = int(client._async_request(answers, kind, *args))
        by_request[item.asked] = item

    def advance(item: _SmallFile) -> None:
        """Take the answer `item` waited for: ask its read, or keep its bytes or error."""
        kind, message = answers.by_number.pop(item.asked)
        try:
            if kind == CMD_STATUS:
                client._convert_status(message)  # raises: OSError, or EOFError at the end
                raise SFTPError("SFTP answered with a status but no data")
            if item.handle is None:
                if kind != CMD_HANDLE:
                    raise SFTPError(f"SFTP open answered with message type {kind}")
                item.handle = message.get_binary()
                if item.size == 0:
                    item.result = b""
                else:
                    ask(item, CMD_READ, item.handle, int64(0), item.size)
                return
            if kind != CMD_DATA:
                raise SFTPError(f"SFTP read answered with message type {kind}")
            data = message.get_binary()
            if not data or len(data) > item.size:
                raise EOFError if not data else SFTPError("SFTP read returned more than asked")
            if len(data) < item.size:  # a server answering less than asked: ask the rest
                rest: list[bytes] = [data]
                read_pipelined(sftp, item.handle, item.size, rest.append, start=len(data))
                data = b"".join(rest)
            item.result = data
        except (OSError, EOFError, SFTPError) as exc:
            if isinstance(exc, ConnectionError):
                raise  # the session, not the file
            item.result = exc

    try:
        while True:
            while len(waiting) < window and (nxt := next(upcoming, None)) is not None:
                path, size = nxt
                item = _SmallFile(path, size)
                waiting.append(item)
                name = path.encode("utf-8", "surrogateescape")
                ask(item, CMD_OPEN, name, SFTP_FLAG_READ, SFTPAttributes())
            if not waiting:
                return
            head = waiting[0]
            while head.result is None:
                for number in [n for n in answers.by_number if n in by_request]:
                    advance(by_request.pop(number))
                if head.result is None:
                    client._read_response()
            waiting.popleft()
            if head.handle is not None:  # not waited for, as close_without_waiting
                client._async_request(type(None), CMD_CLOSE, head.handle)
            yield head.path, head.result
    finally:
        answers.abandoned = True
        answers.by_number.clear()
