"""ASCII armor of age files (`-----BEGIN AGE ENCRYPTED FILE-----`), reading side.

Bundles are binary; armor only matters when someone pastes an age file into
a mail or a ticket. The rules follow the reference implementation: padded,
canonical base64 in lines of 64 columns (the last one shorter or full), LF or
CRLF, whitespace allowed only around the block. Any deviation is an
AgeFormatError(kind="armor"). Errors found after some data was decoded are
raised on the next read, so the age layer sees the data first, as it would
in the reference implementation.
"""

from __future__ import annotations

import base64
import binascii
from typing import Protocol

from handover.errors import AgeFormatError

BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
END = b"-----END AGE ENCRYPTED FILE-----"
COLUMNS = 64
BYTES_PER_LINE = 48
MAX_WHITESPACE = 1024
_READ_SIZE = 64 * 1024


class _Source(Protocol):
    def read(self, size: int, /) -> bytes: ...


class ArmoredReader:
    """A readable stream of the binary age file inside an armored block."""

    def __init__(self, src: _Source, name: str = "") -> None:
        self._src = src
        self.name = name or str(getattr(src, "name", "") or "armored age file")
        self._buf = bytearray()
        self._pos = 0
        self._eof = False
        self._started = False
        self._done = False
        self._error: AgeFormatError | None = None
        self._decoded = b""

    def _fail(self, message: str) -> AgeFormatError:
        return AgeFormatError(f"{self.name}: bad ASCII armor: {message}", "armor")

    def _line(self) -> bytes:
        """Next line without its LF or CRLF; armor failure at EOF with nothing left."""
        while True:
            end = self._buf.find(b"\n", self._pos)
            if end >= 0:
                line = bytes(self._buf[self._pos : end])
                self._pos = end + 1
                break
            if self._eof:
                if self._pos >= len(self._buf):
                    raise self._fail("unexpected end of file")
                line = bytes(self._buf[self._pos :])
                self._pos = len(self._buf)
                break
            if len(self._buf) - self._pos > 4 * MAX_WHITESPACE:
                raise self._fail("line too long")
            if self._pos:
                del self._buf[: self._pos]
                self._pos = 0
            data = self._src.read(_READ_SIZE)
            if data:
                self._buf += data
            else:
                self._eof = True
        return line[:-1] if line.endswith(b"\r") else line

    def _drain_trailing(self) -> None:
        rest = bytes(self._buf[self._pos :])
        while not self._eof and len(rest) <= MAX_WHITESPACE:
            data = self._src.read(_READ_SIZE)
            if not data:
                self._eof = True
            rest += data
        if rest.strip():
            raise self._fail("trailing data after the armored block")
        if len(rest) > MAX_WHITESPACE:
            raise self._fail("too much trailing whitespace")

    def _start(self) -> None:
        skipped = 0
        while True:
            line = self._line()
            if not line.strip():
                skipped += len(line) + 1
                if skipped > MAX_WHITESPACE:
                    raise self._fail("too much leading whitespace")
                continue
            if line != BEGIN:
                raise self._fail("first line is not -----BEGIN AGE ENCRYPTED FILE-----")
            self._started = True
            return

    def _decode_line(self) -> bytes:
        line = self._line()
        if line == END:
            self._done = True
            self._drain_trailing()
            return b""
        if not line:
            raise self._fail("empty line in armored data")
        if len(line) > COLUMNS:
            raise self._fail("line longer than 64 columns")
        try:
            data = base64.b64decode(line, validate=True)
        except binascii.Error as exc:
            raise self._fail(f"invalid base64: {exc}") from exc
        if base64.b64encode(data) != line:
            raise self._fail("non-canonical base64")
        if len(data) < BYTES_PER_LINE:
            if self._line() != END:
                raise self._fail("short line not followed by the END line")
            self._done = True
            self._drain_trailing()
        return data

    def read(self, size: int = -1, /) -> bytes:
        """Decoded bytes; may return fewer than asked, b"" at the end of the block."""
        if self._decoded:
            limit = len(self._decoded) if size < 0 else size
            out_now, self._decoded = self._decoded[:limit], self._decoded[limit:]
            return out_now
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        out = bytearray()
        try:
            if not self._started:
                self._start()
            while not self._done and (size < 0 or len(out) < size):
                out += self._decode_line()
        except AgeFormatError as exc:
            if not out:
                raise
            self._error = exc
        if size >= 0 and len(out) > size:
            self._decoded = bytes(out[size:])
            del out[size:]
        return bytes(out)
