"""Pass a tar stream through unchanged while hashing every member, then seal it.

GNU tar (local or remote) walks the client's tree; handover only parses the
byte stream it produces. Parsing slices 512-byte headers by hand instead of
building `TarInfo` objects: on 20,000 small files `tarfile` costs more than
`tar | age` as a whole. PAX (`x`, `g`) and GNU long-name/long-link (`L`, `K`)
headers are followed, sizes in PAX records or base-256 are read, so names of
any length or script and files beyond 8 GiB pass.

Before the end-of-archive blocks the sealer appends a `SHA256SUMS` member in
`sha256sum` format, with paths exactly as `tar -x` creates them, so a client
runs `sha256sum -c SHA256SUMS` in the extracted folder and needs nothing else.

`pump_tar` runs three stages so both cores work: a reader thread fills 1 MiB
buffers (`readinto`, GIL released), the calling thread parses and hashes
(hashlib releases the GIL on large buffers), a writer thread encrypts and
writes (cryptography releases it too). Buffers come from a fixed pool, so
memory stays bounded whatever the size of the stream.
"""

from __future__ import annotations

import hashlib
import queue
import tarfile
import threading
import time
from collections.abc import Callable
from typing import IO, Any, Protocol

from handover.bundle.types import MemberRecord
from handover.errors import BundleError

BLOCK_SIZE = 512
RECORD_SIZE = 20 * BLOCK_SIZE  # GNU tar's default blocking factor
READ_SIZE = 4 << 20  # fewer hand-offs between threads: each one may wait for the GIL
POOL_BUFFERS = 4
READER_GRACE_S = 30.0
SUMS_NAME = "SHA256SUMS"
MAX_EXTENDED_HEADER_SIZE = 1 << 20  # PAX / GNU long names beyond this are hostile, not data

_ZERO_BLOCK = bytes(BLOCK_SIZE)
_PLAIN_FILE_TYPES = (ord("0"), 0)
_SUMS_PATHS = ("SHA256SUMS", "./SHA256SUMS")
_sha256 = hashlib.sha256
_USTAR_POSIX = b"ustar\x0000"

# typeflag -> manifest type. Types absent from this map carry data and count as files
# (POSIX: an unknown typeflag is read as a regular file).
_NO_DATA_TYPES = {
    ord("1"): "hardlink",
    ord("2"): "symlink",
    ord("3"): "char",
    ord("4"): "block",
    ord("5"): "dir",
    ord("6"): "fifo",
}
_EXT_PAX = ord("x")
_EXT_GLOBAL = ord("g")
_EXT_LONGNAME = ord("L")
_EXT_LONGLINK = ord("K")
_GNU_DUMPDIR = ord("D")
_REFUSED_TYPES = {
    ord("S"): "GNU sparse member",
    ord("M"): "multi-volume continuation",
    ord("N"): "GNU long-names (old format)",
}
_SKIPPED_DATA_TYPES = {ord("V"), _GNU_DUMPDIR}  # volume label; dumpdir listing of a directory


class _Sink(Protocol):
    def write(self, data: Any, /) -> Any: ...


def _number(field: bytes, what: str, where: str) -> int:
    """Read a numeric header field: octal text, or base-256 when the top bit is set."""
    if field and field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        if field[0] & 0x40:  # negative base-256 (times before 1970)
            value -= 1 << (8 * (len(field) - 1) + 6)
        return value
    text = field.split(b"\0", 1)[0].strip()
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise BundleError(f"{where}: malformed {what} field {text!r} in tar header") from None


def _decode(raw: bytes) -> str:
    """Names are bytes on disk: keep undecodable ones through surrogateescape."""
    return raw.decode("utf-8", "surrogateescape")


def parse_pax(data: bytes, where: str) -> dict[str, str]:
    """Parse PAX extended-header records: `LEN key=value\\n`, values may contain newlines."""
    records: dict[str, str] = {}
    pos = 0
    end = len(data)
    while pos < end:
        if data[pos] == 0:  # padding some writers leave after the last record
            break
        space = data.find(b" ", pos, pos + 24)
        if space < 0:
            raise BundleError(f"{where}: malformed PAX header record at byte {pos}")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise BundleError(f"{where}: malformed PAX record length at byte {pos}") from None
        if length <= space - pos + 1 or pos + length > end or data[pos + length - 1] != 0x0A:
            raise BundleError(f"{where}: malformed PAX header record at byte {pos}")
        key, sep, value = data[space + 1 : pos + length - 1].partition(b"=")
        if not sep:
            raise BundleError(f"{where}: PAX record without '=' at byte {pos}")
        records[key.decode("utf-8", "replace")] = _decode(value)
        pos += length
    return records


def extract_path(name: str) -> str:
    """The path `tar -x` creates for a member name: no leading '/', no trailing '/'."""
    path = name.lstrip("/")
    while path.endswith("/"):
        path = path[:-1]
    return path


def sums_line(digest: str, path: str) -> str:
    """One `sha256sum` line, escaped the way GNU coreutils escapes odd names."""
    if "\\" in path or "\n" in path or "\r" in path:
        escaped = path.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        return f"\\{digest}  {escaped}\n"
    return f"{digest}  {path}\n"


def render_sums(entries: dict[str, str]) -> bytes:
    """`sha256sum` file for {path: hex digest}, sorted by path bytes like `sort` in C locale."""
    ordered = sorted(entries.items(), key=lambda item: item[0].encode("utf-8", "surrogateescape"))
    text = "".join(sums_line(digest, path) for path, digest in ordered)
    return text.encode("utf-8", "surrogateescape")


def parse_sums(data: bytes, where: str) -> dict[str, str]:
    """Read a `sha256sum` file into {path: hex digest}; raises BundleCorrupt-worthy BundleError."""
    entries: dict[str, str] = {}
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw:
            continue
        line = _decode(raw)
        escaped = line.startswith("\\")
        if escaped:
            line = line[1:]
        digest, sep, path = line.partition("  ")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            if not sep and line[64:65] == " " and line[65:66] == "*":  # binary-mode marker
                digest, path = line[:64], line[66:]
            else:
                raise BundleError(f"{where}: line {number} is not a sha256sum line")
        if escaped:
            path = _unescape(path)
        entries[path] = digest
    return entries


def _unescape(path: str) -> str:
    out: list[str] = []
    chars = iter(path)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append({"n": "\n", "r": "\r", "\\": "\\"}.get(nxt, "\\" + nxt))
        else:
            out.append(char)
    return "".join(out)


def sums_member(data: bytes, mtime: float | None = None) -> bytes:
    """The tar bytes of a `SHA256SUMS` member (header, data, padding)."""
    info = tarfile.TarInfo(SUMS_NAME)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = int(time.time() if mtime is None else mtime)
    header = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
    padding = -len(data) % BLOCK_SIZE
    return header + data + bytes(padding)


def end_of_archive(offset: int) -> bytes:
    """Two zero blocks, then zeros up to the next 10 KiB record, as GNU tar ends an archive."""
    size = 2 * BLOCK_SIZE
    size += -(offset + size) % RECORD_SIZE
    return bytes(size)


class TarParser:
    """Incremental parser of one tar stream: feed it buffers, it hashes members as they pass.

    `feed(view)` returns how many bytes of `view` belong to the archive before
    its end-of-archive blocks, so a caller forwarding the stream can cut the
    end marker off and append a `SHA256SUMS` member. With `capture_sums`
    (verification), a root `SHA256SUMS` member is kept in `inner_sums`
    instead of refused.
    """

    def __init__(self, where: str, *, capture_sums: bool = False) -> None:
        self.where = where
        self.capture_sums = capture_sums
        self.inner_sums: bytes | None = None
        self.ended = False
        self.offset = 0  # bytes consumed so far
        self.archive_size = 0  # bytes before the end-of-archive marker, once ended
        # (path, type, size, sha256, mode, mtime, link)
        self.rows: list[tuple[str, str, int, str | None, int, float, str | None]] = []
        self._partial = bytearray()
        self._data_left = 0  # bytes of the current member still to skip, padding included
        self._content_left = 0  # of which data bytes to pass to the sink
        self._sink: Callable[[Any], Any] | None = None
        self._hasher: Any = None
        self._collect: bytearray | None = None
        self._ext_kind = 0
        self._pax: dict[str, str] = {}
        self._global: dict[str, str] = {}
        self._long_name: str | None = None
        self._long_link: str | None = None
        self._current: tuple[str, str, int, int, float, str | None] | None = None

    # -- the hot loop -------------------------------------------------------------------

    def feed(self, view: memoryview) -> int:
        """Consume `view`; return how many of its bytes precede the end-of-archive marker."""
        size = len(view)
        start_offset = self.offset
        if self.ended:
            self._check_trailer(view)
            self.offset += size
            return 0
        pos = 0
        while pos < size:
            left = self._data_left
            if left:
                take = size - pos
                if take > left:
                    take = left
                content = self._content_left
                if content:
                    part = take if take < content else content
                    assert self._sink is not None
                    self._sink(view[pos : pos + part])
                    self._content_left = content - part
                pos += take
                self._data_left = left - take
                if not self._data_left:
                    self._end_member()
                continue
            if self._partial or size - pos < BLOCK_SIZE:
                need = BLOCK_SIZE - len(self._partial)
                self._partial += view[pos : pos + need]
                pos += min(need, size - pos)
                if len(self._partial) < BLOCK_SIZE:
                    break
                header = bytes(self._partial)
                self._partial.clear()
            else:
                header = bytes(view[pos : pos + BLOCK_SIZE])
                pos += BLOCK_SIZE
            if header == _ZERO_BLOCK:
                self.ended = True
                self.archive_size = start_offset + pos - BLOCK_SIZE
                self._check_trailer(view[pos:])
                self.offset = start_offset + size
                return self.archive_size - start_offset
            # Fast path: a plain ustar regular file with no extended header, its data in this
            # buffer (most small files). Anything unusual goes through _header.
            if (
                header[156] in _PLAIN_FILE_TYPES
                and header[257:262] == b"ustar"
                and not self._pax
                and not self._global
                and self._long_name is None
            ):
                try:
                    msize = int(header[124:135], 8)
                    mode = int(header[100:107], 8) & 0o7777
                    mtime = int(header[136:147], 8)
                except ValueError:
                    msize = -1
                end = pos + msize
                if msize >= 0 and end <= size:
                    raw = header[0:100]
                    nul = raw.find(0)
                    if nul >= 0:
                        raw = raw[:nul]
                    if header[345] and header[257:265] == _USTAR_POSIX:
                        raw = header[345:500].split(b"\0", 1)[0] + b"/" + raw
                    path = raw.decode("utf-8", "surrogateescape")
                    if (
                        path
                        and path[0] != "/"
                        and path[-1] != "/"
                        and ".." not in path
                        and path not in _SUMS_PATHS
                    ):
                        digest = _sha256(view[pos:end]).hexdigest()
                        self.rows.append((path, "file", msize, digest, mode, float(mtime), None))
                        padded = msize + (-msize % BLOCK_SIZE)
                        if pos + padded <= size:
                            pos += padded
                        else:  # the padding runs into the next buffer
                            self._data_left = pos + padded - size
                            self._content_left = 0
                            self._current = None
                            pos = size
                        continue
            self._header(header, start_offset + pos - BLOCK_SIZE)
        self.offset = start_offset + size
        return size

    def _check_trailer(self, view: memoryview) -> None:
        if view.tobytes().strip(b"\0"):
            raise BundleError(f"{self.where}: data after the tar end-of-archive marker")

    # -- headers -------------------------------------------------------------------------

    def _header(self, header: bytes, at: int) -> None:
        where = self.where
        if header[257:262] != b"ustar":  # old-style header: only its checksum says it is one
            try:
                stored = _number(header[148:156], "checksum", where)
            except BundleError:
                stored = -1
            computed = sum(header) - sum(header[148:156]) + 8 * 32
            if stored != computed:
                raise BundleError(f"{where}: not a tar stream (bad header at byte {at})")
        typeflag = header[156]
        size = _number(header[124:136], "size", where)
        if typeflag in (_EXT_PAX, _EXT_GLOBAL, _EXT_LONGNAME, _EXT_LONGLINK):
            if size > MAX_EXTENDED_HEADER_SIZE:
                raise BundleError(f"{where}: extended header of {size} bytes at byte {at}")
            self._ext_kind = typeflag
            self._collect = bytearray()
            self._begin_data(size, self._collect.extend)
            return
        refused = _REFUSED_TYPES.get(typeflag)
        if refused:
            raise BundleError(f"{where}: {refused} at byte {at} is not supported")

        pax = self._pax
        if self._global:
            pax = {**self._global, **pax}
        if self._long_name is not None:
            name = self._long_name
        elif "path" in pax:
            name = pax["path"]
        else:
            raw = header[0:100].split(b"\0", 1)[0]
            if header[257:265] == _USTAR_POSIX and header[345]:
                raw = header[345:500].split(b"\0", 1)[0] + b"/" + raw
            name = _decode(raw)
        if pax:
            if any(key.startswith("GNU.sparse") for key in pax):
                raise BundleError(f"{where}: sparse member {name!r} is not supported")
            if "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError:
                    raise BundleError(f"{where}: malformed PAX size for {name!r}") from None
            mtime_text = pax.get("mtime")
        else:
            mtime_text = None
        if mtime_text is not None:
            try:
                mtime = float(mtime_text)
            except ValueError:
                raise BundleError(f"{where}: malformed PAX mtime for {name!r}") from None
        else:
            mtime = float(_number(header[136:148], "mtime", where))
        mode = _number(header[100:108], "mode", where) & 0o7777
        link: str | None = None
        kind = _NO_DATA_TYPES.get(typeflag)
        if kind in ("symlink", "hardlink"):
            if self._long_link is not None:
                link = self._long_link
            elif "linkpath" in pax:
                link = pax["linkpath"]
            else:
                link = _decode(header[157:257].split(b"\0", 1)[0])
        self._pax = {}
        self._long_name = self._long_link = None

        path = extract_path(name)
        if not path or path in (".", "./"):
            path = "."
        if ".." in path.split("/"):
            raise BundleError(f"{where}: member {name!r} points outside the archive ('..')")
        if path in (SUMS_NAME, "./" + SUMS_NAME):
            if self.capture_sums and kind is None:
                self._current = (path, "sums", size, mode, mtime, None)
                self._collect = bytearray()
                self._begin_data(size, self._collect.extend)
                return
            raise BundleError(
                f"{where}: member {name!r} would collide with the {SUMS_NAME} that "
                "handover adds at the root of every volume; rename it or seal its parent folder"
            )
        if kind is not None:
            self.rows.append((path, kind, 0, None, mode, mtime, link))
            return
        if typeflag in _SKIPPED_DATA_TYPES:
            self._current = None
            self._begin_data(size, None)
            return
        hasher = hashlib.sha256()
        self._hasher = hasher
        self._current = (path, "file", size, mode, mtime, None)
        self._begin_data(size, hasher.update)

    def _begin_data(self, size: int, sink: Callable[[Any], Any] | None) -> None:
        if size < 0:
            raise BundleError(f"{self.where}: negative member size in tar header")
        self._content_left = size if sink is not None else 0
        self._sink = sink
        self._data_left = size + (-size % BLOCK_SIZE)
        if not self._data_left:
            self._end_member()

    def _end_member(self) -> None:
        collected = self._collect
        if collected is not None:
            self._collect = None
            current = self._current
            if current is not None and current[1] == "sums":
                self._current = None
                self.inner_sums = bytes(collected)
                return
            ext = self._ext_kind
            where = self.where
            if ext == _EXT_PAX:
                self._pax = parse_pax(bytes(collected), where)
            elif ext == _EXT_GLOBAL:
                self._global.update(parse_pax(bytes(collected), where))
            elif ext == _EXT_LONGNAME:
                self._long_name = _decode(bytes(collected).split(b"\0", 1)[0])
            elif ext == _EXT_LONGLINK:
                self._long_link = _decode(bytes(collected).split(b"\0", 1)[0])
            return
        current = self._current
        if current is None:
            return
        self._current = None
        path, kind, size, mode, mtime, _ = current
        self.rows.append((path, kind, size, self._hasher.hexdigest(), mode, mtime, None))
        self._hasher = None

    # -- results -------------------------------------------------------------------------

    def close(self) -> None:
        """Check that the stream ended properly; raises BundleError on a truncated archive."""
        if self._data_left or self._partial:
            raise BundleError(f"{self.where}: tar stream truncated inside a member")
        if not self.ended:
            raise BundleError(f"{self.where}: tar stream ended without an end-of-archive marker")

    def sums(self) -> dict[str, str]:
        """{path: sha256} of every regular file (hard links count with their target's hash)."""
        entries: dict[str, str] = {}
        for path, kind, _size, digest, _mode, _mtime, link in self.rows:
            if kind == "file" and digest is not None:
                entries[path] = digest
            elif kind == "hardlink" and link is not None:
                target = entries.get(extract_path(link))
                if target is not None:
                    entries[path] = target
            else:
                entries.pop(path, None)  # a later non-file member replaces an earlier file
        return entries

    def members(self, extras: dict[str, dict[str, str]] | None = None) -> list[MemberRecord]:
        """MemberRecords of every member, in stream order (built without validation: hot path)."""
        extras = extras or {}
        out: list[MemberRecord] = []
        construct = MemberRecord.model_construct
        for path, kind, size, digest, mode, mtime, link in self.rows:
            fields: dict[str, Any] = {
                "path": path,
                "type": kind,
                "size": size,
                "sha256": digest,
                "mode": mode,
                "mtime": mtime,
                "extra": extras.get(path, {}),
            }
            if link is not None:
                fields["link"] = link
            out.append(construct(**fields))
        return out


class _Failure:
    """First exception raised by any stage of a pipeline."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.lock = threading.Lock()

    def set(self, error: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = error


def _read_full(src: IO[bytes], buffer: bytearray) -> int:
    """Fill `buffer` as far as the stream allows (short reads from pipes, sockets, decryptors)."""
    view = memoryview(buffer)
    total = 0
    size = len(buffer)
    readinto = getattr(src, "readinto", None)
    while total < size:
        if readinto is not None:
            got = readinto(view[total:])
        else:
            chunk = src.read(size - total)
            got = len(chunk)
            view[total : total + got] = chunk
        if not got:
            break
        total += got
    return total


def pump_tar(
    src: IO[bytes],
    parser: TarParser,
    sink: _Sink | None = None,
    *,
    trailer: Callable[[TarParser], bytes] | None = None,
    progress: Callable[[int], None] | None = None,
    read_size: int = READ_SIZE,
) -> int:
    """Stream `src` through `parser` (and on to `sink`, cut before end-of-archive).

    When `sink` is given, `trailer(parser)` is called once the archive has
    ended and its bytes (the `SHA256SUMS` member and a fresh end-of-archive)
    are written after the archive. Returns the number of bytes written to
    `sink` (or read from `src` without one). Raises BundleError when the
    stream is not a complete tar archive; errors of `src` and `sink` pass
    through unchanged.
    """
    failure = _Failure()
    free: queue.Queue[bytearray | None] = queue.Queue()
    for _ in range(POOL_BUFFERS):
        free.put(bytearray(read_size))
    full: queue.Queue[tuple[bytearray, int] | None] = queue.Queue()
    out: queue.Queue[tuple[bytearray | bytes, int] | None] = queue.Queue()
    stop = threading.Event()

    def read_stage() -> None:
        try:
            while not stop.is_set():
                buffer = free.get()
                if buffer is None or stop.is_set():
                    return
                count = _read_full(src, buffer)
                if not count:
                    break
                full.put((buffer, count))
        except BaseException as exc:
            failure.set(exc)
        finally:
            full.put(None)

    def write_stage() -> None:
        assert sink is not None
        write = sink.write
        try:
            while True:
                item = out.get()
                if item is None:
                    return
                buffer, count = item
                if failure.error is None:
                    write(memoryview(buffer)[:count])
                if isinstance(buffer, bytearray):
                    free.put(buffer)
        except BaseException as exc:
            failure.set(exc)
            stop.set()
            free.put(None)

    reader = threading.Thread(target=read_stage, name="tar-read", daemon=True)
    writer = threading.Thread(target=write_stage, name="tar-write", daemon=True) if sink else None
    reader.start()
    if writer is not None:
        writer.start()
    written = 0
    try:
        while True:
            item = full.get()
            if item is None:
                break
            if failure.error is not None:
                break
            buffer, count = item
            kept = parser.feed(memoryview(buffer)[:count])
            if progress is not None:
                progress(count)
            if writer is not None:
                written += kept
                out.put((buffer, kept))
            else:
                written += count
                free.put(buffer)
        if failure.error is None:
            parser.close()
            if writer is not None and trailer is not None:
                tail = trailer(parser)
                written += len(tail)
                out.put((tail, len(tail)))
    except BaseException as exc:
        failure.set(exc)
    finally:
        stop.set()
        free.put(None)
        if writer is not None:
            out.put(None)
            writer.join()
        # On failure the reader stops after its current read (a stalled remote producer is
        # left behind after READER_GRACE_S rather than hanging the caller).
        reader.join(timeout=READER_GRACE_S if failure.error is not None else None)
    if failure.error is not None:
        raise failure.error
    return written


def seal_trailer(parser: TarParser) -> bytes:
    """`SHA256SUMS` member for the files seen, then end-of-archive blocks."""
    tail = sums_member(render_sums(parser.sums()))
    return tail + end_of_archive(parser.archive_size + len(tail))
