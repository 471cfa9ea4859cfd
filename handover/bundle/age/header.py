"""The age header: its text encoding, its MAC, and a strict streaming parser.

The header is the part of an age file that two implementations must read
the same way, byte for byte (it is MACed with a key derived from the file
key), so encoding and parsing live together and nowhere else.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from handover.bundle.age.primitives import b64decode_strict, b64encode_raw, hkdf_sha256
from handover.bundle.age.stanza import Stanza
from handover.bundle.age.stream import CHUNK_SIZE, ByteSource
from handover.errors import AgeFormatError

VERSION_LINE = b"age-encryption.org/v1\n"
MAX_HEADER_BYTES = 1 << 20
_COLUMNS = 64


def _valid_arg(arg: str) -> bool:
    return bool(arg) and all(33 <= ord(c) <= 126 for c in arg)


def encode_header(stanzas: Sequence[Stanza], file_key: bytes) -> bytes:
    """Serialise the header, MAC line included, keyed by `file_key`."""
    out = bytearray(VERSION_LINE)
    for stanza in stanzas:
        if not _valid_arg(stanza.type) or not all(_valid_arg(a) for a in stanza.args):
            raise ValueError(f"invalid stanza {stanza.type!r}")
        out += ("-> " + " ".join([stanza.type, *stanza.args]) + "\n").encode("ascii")
        body = b64encode_raw(stanza.body)
        for i in range(0, len(body), _COLUMNS):
            out += body[i : i + _COLUMNS].encode("ascii") + b"\n"
        if len(body) % _COLUMNS == 0:
            out += b"\n"  # a full last line (or no body) is followed by an empty line
    out += b"---"
    mac = hmac.new(header_key(file_key), bytes(out), hashlib.sha256).digest()
    out += b" " + b64encode_raw(mac).encode("ascii") + b"\n"
    return bytes(out)


def header_key(file_key: bytes) -> bytes:
    """The key of the header MAC (HMAC-SHA-256), derived from the file key."""
    return hkdf_sha256(file_key, b"", b"header")


class HeaderParser:
    """Reads header lines from a stream; keeps whatever it read past the header."""

    def __init__(self, src: ByteSource, name: str) -> None:
        self._src = src
        self._name = name
        self._buf = bytearray()
        self._pos = 0
        self._eof = False

    def _fail(self, message: str) -> AgeFormatError:
        return AgeFormatError(f"{self._name}: malformed age header: {message}", "header")

    def line(self) -> bytes:
        """One line including its LF; header failure on EOF or an oversized header."""
        while True:
            end = self._buf.find(b"\n", self._pos)
            if end >= 0:
                out = bytes(self._buf[self._pos : end + 1])
                self._pos = end + 1
                return out
            if self._eof or len(self._buf) > MAX_HEADER_BYTES:
                if self._eof and not self._buf:
                    raise self._fail("empty file")
                raise self._fail("unexpected end of header")
            self._more()

    def _more(self) -> None:
        data = self._src.read(CHUNK_SIZE)
        if data:
            self._buf += data
        else:
            self._eof = True

    def exact(self, size: int) -> bytes:
        while len(self._buf) - self._pos < size and not self._eof:
            self._more()
        out = bytes(self._buf[self._pos : self._pos + size])
        self._pos += len(out)
        return out

    def rest(self) -> bytes:
        return bytes(self._buf[self._pos :])

    def parse(self) -> tuple[list[Stanza], bytes, bytes]:
        """Return (stanzas, bytes covered by the MAC, MAC)."""
        covered = bytearray(self._version_line())
        stanzas: list[Stanza] = []
        while True:
            line = self.line()
            if line.startswith(b"---"):
                covered += b"---"
                return stanzas, bytes(covered), self._mac(line)
            covered += line
            stanzas.append(self._stanza(line, covered))

    def _version_line(self) -> bytes:
        first = self.line()
        if first != VERSION_LINE:
            if first.startswith(b"age-encryption.org/"):
                raise self._fail(f"unsupported version {first.strip()[:40]!r}")
            raise self._fail("not an age file (bad first line)")
        return first

    def _mac(self, line: bytes) -> bytes:
        """The MAC of a `--- <base64>` line."""
        if not line.startswith(b"--- ") or line[-1:] != b"\n":
            raise self._fail("malformed MAC line")
        try:
            mac = b64decode_strict(line[4:-1])
        except ValueError as exc:
            raise self._fail(f"MAC: {exc}") from exc
        if len(mac) != 32:
            raise self._fail("MAC has the wrong length")
        return mac

    def _stanza(self, line: bytes, covered: bytearray) -> Stanza:
        """The stanza opened by `-> type args` and its body lines (added to `covered`)."""
        if not line.startswith(b"-> "):
            raise self._fail("expected a stanza or the MAC line")
        try:
            text = line[3:-1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise self._fail("non-ASCII stanza line") from exc
        args = text.split(" ")
        if not all(_valid_arg(a) for a in args):
            raise self._fail("empty or invalid stanza argument")
        body = bytearray()
        while True:  # full 64-column lines, then a shorter (possibly empty) last one
            bline = self.line()
            covered += bline
            chunk = bline[:-1]
            if len(chunk) > _COLUMNS:
                raise self._fail("stanza body line longer than 64 columns")
            try:
                body += b64decode_strict(chunk)
            except ValueError as exc:
                raise self._fail(f"stanza body: {exc}") from exc
            if len(chunk) < _COLUMNS:
                return Stanza(args[0], args[1:], bytes(body))
