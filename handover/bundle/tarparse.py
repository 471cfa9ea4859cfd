"""An incremental tar parser that hashes every member as the stream passes through.

GNU tar (local or remote) walks the client's tree; handover only parses the
byte stream it produces. Parsing slices 512-byte headers by hand instead of
building `TarInfo` objects: on 20,000 small files `tarfile` costs more than
`tar | age` as a whole. PAX (`x`, `g`) and GNU long-name/long-link (`L`, `K`)
headers are followed, sizes in PAX records or base-256 are read, so names of
any length or script and files beyond 8 GiB pass.

This is the hot path of sealing and verifying: the parser never copies
member data, a plain small file whose data is in the current buffer costs
one header slice and one hash call, and anything unusual takes the slower,
general path.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from handover.bundle.members import MemberTable
from handover.bundle.pathtable import PathTable
from handover.bundle.sums import SUMS_NAME
from handover.errors import BundleError

BLOCK_SIZE = tarfile.BLOCKSIZE
MAX_EXTENDED_HEADER_SIZE = 1 << 20  # PAX / GNU long names beyond this are hostile, not data
MAX_SUMS_SIZE = 256 << 20  # a volume's own SHA256SUMS, held in memory while reading
MAX_PATH_BYTES = 4000  # under PATH_MAX (4096) once the destination folder is added
MAX_COMPONENT_BYTES = 255  # NAME_MAX of every common file system
SHOWN_NAME_CHARS = 120

_ZERO_BLOCK = bytes(BLOCK_SIZE)
_PLAIN_FILE_TYPES = (ord("0"), 0)
_SUMS_PATHS = (SUMS_NAME, "./" + SUMS_NAME)
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
_LINK_TYPES = ("symlink", "hardlink")
_EXT_PAX = ord("x")
_EXT_GLOBAL = ord("g")
_EXT_LONGNAME = ord("L")
_EXT_LONGLINK = ord("K")
_EXTENDED_TYPES = (_EXT_PAX, _EXT_GLOBAL, _EXT_LONGNAME, _EXT_LONGLINK)
_GNU_DUMPDIR = ord("D")
_REFUSED_TYPES = {
    ord("S"): "GNU sparse member",
    ord("M"): "multi-volume continuation",
    ord("N"): "GNU long-names (old format)",
}
_SKIPPED_DATA_TYPES = {ord("V"), _GNU_DUMPDIR}  # volume label; dumpdir listing of a directory

# One parsed member: (path, type, size, sha256, mode, mtime, link)
Row = tuple[str, str, int, str | None, int, float, str | None]


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


def _ustar_name(header: bytes) -> str:
    """The name field, behind the POSIX ustar prefix field when there is one."""
    raw = header[0:100]
    nul = raw.find(0)
    if nul >= 0:
        raw = raw[:nul]
    if header[345] and header[257:265] == _USTAR_POSIX:
        raw = header[345:500].split(b"\0", 1)[0] + b"/" + raw
    return _decode(raw)


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


def shown(name: str) -> str:
    """A member name for a one-line message: quoted and escaped by repr, cut when very long.

    repr() turns newlines and control characters into escapes, so a hostile
    name never splits a message; the CLI escapes rich markup on top.
    """
    text = repr(name)
    if len(text) <= SHOWN_NAME_CHARS:
        return text
    return f"{text[:SHOWN_NAME_CHARS]}... ({len(name)} characters)"


OPEN_REFUSED_KINDS = {
    "char": "a character device",
    "block": "a block device",
    "fifo": "a FIFO",
}
MAX_LINK_TARGET_BYTES = MAX_PATH_BYTES


def name_problem(name: str, kind: str, link: str | None = None) -> str | None:
    """Why `handover open` cannot extract a member of this name and kind, or None.

    The one member policy of the reading side: verify and open both apply it
    (through `MemberPolicy`), so they reach the same verdict on the same
    bundle. Symbolic links are client data (web roots, releases): their
    target is only checked to be something a link can hold, never where it
    points, since open never follows one. Device files and FIFOs are
    refused: restoring them needs root and they carry no data.
    """
    if "\0" in name:
        return "contains a NUL byte: refused"
    if name.startswith("/"):
        return "has an absolute path: refused"
    parts = name.split("/")
    if ".." in parts:
        return "points outside the folder ('..'): refused"
    refused = OPEN_REFUSED_KINDS.get(kind)
    if refused is not None:
        return (
            f"is {refused}; handover open refuses device files and FIFOs "
            "(tar restores them as root, see README.txt)"
        )
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) > MAX_PATH_BYTES:
        return f"is longer than {MAX_PATH_BYTES} bytes: refused"
    if len(raw) > MAX_COMPONENT_BYTES and any(
        len(part.encode("utf-8", "surrogateescape")) > MAX_COMPONENT_BYTES for part in parts
    ):
        return f"has a name component longer than {MAX_COMPONENT_BYTES} bytes: refused"
    if kind != "dir" and not any(part not in ("", ".") for part in parts):
        return "is not a file name: refused"
    if kind == "symlink":
        return _symlink_target_problem(link or "")
    return None


def _symlink_target_problem(target: str) -> str | None:
    """What no symbolic link can hold: an empty target, a NUL byte, beyond PATH_MAX."""
    if not target:
        return "is a symbolic link with an empty target: refused"
    if "\0" in target:
        return "is a symbolic link whose target contains a NUL byte: refused"
    if len(target.encode("utf-8", "surrogateescape")) > MAX_LINK_TARGET_BYTES:
        limit = MAX_LINK_TARGET_BYTES
        return f"is a symbolic link whose target is longer than {limit} bytes: refused"
    return None


def path_key(name: str) -> str:
    """One spelling per path: `./a/`, `a` and `a//` are the same member path."""
    return "/".join(part for part in name.split("/") if part not in ("", "."))


class MemberPolicy:
    """The member policy of one tar stream read back (verify and open alike).

    Besides `name_problem`, it refuses what would make extraction depend on
    the order of members or on the file system: the same path twice (`a`
    and `./a` are the same path), and a member under a path that is a file
    or a symbolic link (`a` then `a/b`: nothing is ever written through a
    link). A hard link must name a regular file met earlier in the same
    stream, the only case where `os.link` inside the extraction folder gives
    what `tar -x` gives. It keeps one entry per path, in a PathTable: a dict
    for most volumes, on disk (paths only as keyed digests) for huge ones.
    """

    def __init__(self, where: str, memory_limit: int | None = None) -> None:
        self.where = where
        self._kinds = PathTable(memory_limit)
        self._last_parent = ""

    def close(self) -> None:
        """Forget the paths (and remove the table's database, if it spilled to disk)."""
        self._kinds.close()

    def check(self, name: str, kind: str, link: str | None = None) -> None:
        """Raise BundleError naming the member when open could not extract it as it is."""
        problem = name_problem(name, kind, link)
        if problem is not None:
            raise BundleError(f"{self.where}: member {shown(name)} {problem}")
        parts = [part for part in name.split("/") if part not in ("", ".")]
        if not parts:
            return  # the root folder itself
        kinds = self._kinds
        parent = "/".join(parts[:-1])
        if parent and parent != self._last_parent:
            for end in range(1, len(parts)):
                prefix = "/".join(parts[:end])
                seen = kinds.setdefault(prefix, "dir")
                if seen != "dir":
                    what = "a symbolic link" if seen == "symlink" else "a file"
                    raise BundleError(
                        f"{self.where}: member {shown(name)} lies under {shown(prefix)}, "
                        f"which is {what} in the same archive: refused"
                    )
            self._last_parent = parent
        key = "/".join(parts)
        before = kinds.kind(key)
        if before is not None and not (before == "dir" and kind == "dir"):
            raise BundleError(
                f"{self.where}: member {shown(name)} appears twice (or as both a file and "
                "a folder) in the same archive: refused"
            )
        if kind == "hardlink":
            self._check_hardlink(name, link or "")
        kinds.set(key, kind)

    def _check_hardlink(self, name: str, link: str) -> None:
        if link.startswith("/") or "\0" in link or ".." in link.split("/"):
            target = None
        else:
            target = path_key(link)
        if not target or self._kinds.kind(target) != "file":
            raise BundleError(
                f"{self.where}: member {shown(name)} is a hard link to {shown(link)}, which is "
                "not a regular file earlier in the same archive: refused"
            )


class Extractor(Protocol):
    """Where `handover open` writes the members the parser reads (see extract.py)."""

    def directory(self, path: str) -> None: ...

    def open_file(self, path: str, mode: int, mtime: float) -> Callable[[Any], Any]: ...

    def close_file(self) -> None: ...

    def symlink(self, path: str, target: str) -> None: ...

    def hardlink(self, path: str, target: str) -> None: ...


class FileSums(Mapping[str, str]):
    """{path: sha256 hex} of a stream's regular files, each digest read from its member's row.

    Why not a dict of digests: a volume's trailer holds this map while the
    volume ends, and its hex strings cost ~110 bytes per file on top of the
    path (~300 bytes per file in all while the trailer was rendered, ~10 MB
    for a volume of 33,000 files); a member's position costs 28.
    """

    def __init__(self, positions: dict[str, int], digest_at: Callable[[int], str | None]) -> None:
        self._positions = positions
        self._digest_at = digest_at

    def __getitem__(self, path: str) -> str:
        digest = self._digest_at(self._positions[path])
        if digest is None:  # cannot happen: only members with a digest are listed
            raise KeyError(path)
        return digest

    def __iter__(self) -> Iterator[str]:
        return iter(self._positions)

    def __len__(self) -> int:
        return len(self._positions)


class RowSink(Protocol):
    """Where a parser puts its rows: a list, or a reader's check that folds them as they come."""

    def append(self, row: Row, /) -> None: ...


class SumsSink(Protocol):
    """Receives the data of a volume's own SHA256SUMS member as it streams past."""

    def begin(self) -> None: ...

    def write(self, view: Any, /) -> None: ...

    def end(self) -> None: ...


class TarParser:
    """Incremental parser of one tar stream: feed it buffers, it hashes members as they pass.

    `feed(view)` returns how many bytes of `view` belong to the archive before
    its end-of-archive blocks, so a caller forwarding the stream can cut the
    end marker off and append a `SHA256SUMS` member. With `capture_sums`
    (verification), a root `SHA256SUMS` member is kept in `inner_sums`
    instead of refused (at most `sums_limit` bytes), or passed to `sums_sink`
    as it streams (no limit: nothing is held); members named in `capture`
    ({path: byte limit}) are kept in `captured` and listed as files. Rows go
    to `rows` (a list by default; a reader passes a sink that folds them).

    Reading a bundle back passes a `MemberPolicy` (every member name and kind
    is checked as it is read) and, for `handover open`, an `Extractor` that
    receives the members' data as the parser hashes it, so verify and open
    read exactly the same members the same way.
    """

    def __init__(
        self,
        where: str,
        *,
        capture_sums: bool = False,
        sums_limit: int = MAX_SUMS_SIZE,
        capture: Mapping[str, int] | None = None,
        policy: MemberPolicy | None = None,
        extractor: Extractor | None = None,
        max_members: int | None = None,
        rows: RowSink | None = None,
        sums_sink: SumsSink | None = None,
    ) -> None:
        if extractor is not None and policy is None:
            raise ValueError("an extractor needs a member policy")
        self.where = where
        self.capture_sums = capture_sums
        self.inner_sums: bytes | None = None
        self.captured: dict[str, bytes] = {}
        self._capture: dict[str, int] = dict(capture or {})
        self._sums_sink = sums_sink if capture_sums else None
        self.sums_seen = False
        if capture_sums:
            self._capture.update(dict.fromkeys(_SUMS_PATHS, sums_limit))
        self._policy = policy
        self._extractor = extractor
        # Reading back, the manifest says how many members to expect: rows (memory) stop there.
        self._max_members = max_members
        # The fast path neither writes nor captures: it serves sealing and verifying.
        self._fast = extractor is None and not capture
        self._count = 0  # members checked by the policy
        self.ended = False
        self.offset = 0  # bytes consumed so far
        self.archive_size = 0  # bytes before the end-of-archive marker, once ended
        self.rows: Any = [] if rows is None else rows  # list[Row] unless a RowSink was given
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
            if self._data_left:
                pos = self._pass_data(view, pos, size)
                continue
            if self._fast and not (
                self._partial or self._pax or self._global or self._long_name is not None
            ):
                pos = self._plain_files(view, pos, size)
                if pos == size:
                    break
            if self._partial or size - pos < BLOCK_SIZE:
                header, pos = self._join_block(view, pos, size)
                if header is None:  # the rest of the header comes with the next buffer
                    break
            else:
                header = bytes(view[pos : pos + BLOCK_SIZE])
                pos += BLOCK_SIZE
            if header == _ZERO_BLOCK:
                return self._end_archive(view, pos, start_offset)
            self._header(header, start_offset + pos - BLOCK_SIZE)
        self.offset = start_offset + size
        return size

    def _pass_data(self, view: memoryview, pos: int, size: int) -> int:
        """Hand the current member's data in `view[pos:]` to its sink; return where it ends."""
        left = self._data_left
        take = size - pos
        if take > left:
            take = left
        content = self._content_left
        if content:
            part = take if take < content else content
            assert self._sink is not None
            self._sink(view[pos : pos + part])
            self._content_left = content - part
        self._data_left = left - take
        if not self._data_left:
            self._end_member()
        return pos + take

    def _join_block(self, view: memoryview, pos: int, size: int) -> tuple[bytes | None, int]:
        """A header split across buffers: its start kept from before, its end at `view[pos:]`.

        Returns (None, size) when this buffer ends inside the block too: its start is kept.
        """
        need = BLOCK_SIZE - len(self._partial)
        self._partial += view[pos : pos + need]
        pos += min(need, size - pos)
        if len(self._partial) < BLOCK_SIZE:
            return None, pos
        header = bytes(self._partial)
        self._partial.clear()
        return header, pos

    def _end_archive(self, view: memoryview, pos: int, start_offset: int) -> int:
        """A zero block: the archive ends; only zeros may follow. Returns the bytes kept."""
        self.ended = True
        self.archive_size = start_offset + pos - BLOCK_SIZE
        self._check_trailer(view[pos:])
        self.offset = start_offset + len(view)
        return self.archive_size - start_offset

    def _plain_files(self, view: memoryview, pos: int, size: int) -> int:
        """Fast path: the plain ustar regular files at `pos` whose data is in this buffer.

        That is most small files: no extended header, no odd name, so each
        costs one header slice and one hash call. Called only when no header
        is half read and no extended header applies (`feed` checks). Returns
        the position of the first header left to `_header` (or the buffer end).
        """
        rows = self.rows
        policy = self._policy
        while size - pos >= BLOCK_SIZE:
            if view[pos + 156] not in _PLAIN_FILE_TYPES:  # typeflag, read before any copy
                return pos
            header = bytes(view[pos : pos + BLOCK_SIZE])
            if header[257:262] != b"ustar":
                return pos
            try:
                msize = int(header[124:135], 8)
                mode = int(header[100:107], 8) & 0o7777
                mtime = int(header[136:147], 8)
            except ValueError:
                return pos
            start = pos + BLOCK_SIZE
            end = start + msize
            if msize < 0 or end > size:
                return pos
            path = _ustar_name(header)
            if not path or path[0] == "/" or path[-1] == "/" or ".." in path or path in _SUMS_PATHS:
                return pos
            if policy is not None:
                policy.check(path, "file")
                self._count_member()
            digest = _sha256(view[start:end]).hexdigest()
            rows.append((path, "file", msize, digest, mode, float(mtime), None))
            pos = end + (-msize % BLOCK_SIZE)
            if pos > size:  # the padding runs into the next buffer
                self._data_left = pos - size
                self._content_left = 0
                self._current = None
                return size
        return pos

    def _check_trailer(self, view: memoryview) -> None:
        if view.tobytes().strip(b"\0"):
            raise BundleError(f"{self.where}: data after the tar end-of-archive marker")

    # -- headers -------------------------------------------------------------------------

    def _header(self, header: bytes, at: int) -> None:
        """Any header the fast path left: extended headers, links, odd types, PAX names."""
        where = self.where
        if header[257:262] != b"ustar":
            self._check_old_header(header, at)
        typeflag = header[156]
        size = _number(header[124:136], "size", where)
        if typeflag in _EXTENDED_TYPES:
            self._begin_extended(typeflag, size, at)
            return
        refused = _REFUSED_TYPES.get(typeflag)
        if refused:
            raise BundleError(f"{where}: {refused} at byte {at} is not supported")
        pax = {**self._global, **self._pax} if self._global else self._pax
        name = self._member_name(header, pax)
        size, mtime = self._size_and_mtime(header, pax, size, name)
        mode = _number(header[100:108], "mode", where) & 0o7777
        kind = _NO_DATA_TYPES.get(typeflag)
        link = self._link_target(header, pax) if kind in _LINK_TYPES else None
        self._pax = {}
        self._long_name = self._long_link = None
        self._begin_member(name, typeflag, kind, size, mode, mtime, link)

    def _check_old_header(self, header: bytes, at: int) -> None:
        """An old-style (pre-ustar) header: only its checksum says it is a header at all."""
        try:
            stored = _number(header[148:156], "checksum", self.where)
        except BundleError:
            stored = -1
        computed = sum(header) - sum(header[148:156]) + 8 * 32
        if stored != computed:
            raise BundleError(f"{self.where}: not a tar stream (bad header at byte {at})")

    def _begin_extended(self, typeflag: int, size: int, at: int) -> None:
        """Collect a PAX or GNU long-name header's data; it applies to the next member."""
        if size > MAX_EXTENDED_HEADER_SIZE:
            raise BundleError(f"{self.where}: extended header of {size} bytes at byte {at}")
        self._ext_kind = typeflag
        self._collect = bytearray()
        self._begin_data(size, self._collect.extend)

    def _member_name(self, header: bytes, pax: dict[str, str]) -> str:
        if self._long_name is not None:
            return self._long_name
        if "path" in pax:
            return pax["path"]
        return _ustar_name(header)

    def _size_and_mtime(
        self, header: bytes, pax: dict[str, str], size: int, name: str
    ) -> tuple[int, float]:
        """Size and mtime, from PAX records when present (large files, sub-second times)."""
        where = self.where
        mtime_text = None
        if pax:
            if any(key.startswith("GNU.sparse") for key in pax):
                raise BundleError(f"{where}: sparse member {shown(name)} is not supported")
            if "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError:
                    raise BundleError(f"{where}: malformed PAX size for {shown(name)}") from None
            mtime_text = pax.get("mtime")
        if mtime_text is None:
            return size, float(_number(header[136:148], "mtime", where))
        try:
            return size, float(mtime_text)
        except ValueError:
            raise BundleError(f"{where}: malformed PAX mtime for {shown(name)}") from None

    def _link_target(self, header: bytes, pax: dict[str, str]) -> str:
        if self._long_link is not None:
            return self._long_link
        if "linkpath" in pax:
            return pax["linkpath"]
        return _decode(header[157:257].split(b"\0", 1)[0])

    def _begin_member(
        self,
        name: str,
        typeflag: int,
        kind: str | None,
        size: int,
        mode: int,
        mtime: float,
        link: str | None,
    ) -> None:
        """Record a member without data, or start hashing (or skipping) the data that follows."""
        where = self.where
        if self._policy is not None:
            # a GNU dumpdir (D) is a directory; a volume label (V) is checked as one
            skipped = kind is None and typeflag in _SKIPPED_DATA_TYPES
            self._policy.check(name, "dir" if skipped else kind or "file", link)
            self._count_member()
        path = extract_path(name)
        if not path or path in (".", "./"):
            path = "."
        if ".." in path.split("/"):
            raise BundleError(f"{where}: member {shown(name)} points outside the archive ('..')")
        limit = self._capture.get(path)
        if limit is not None and kind is None and typeflag not in _SKIPPED_DATA_TYPES:
            if self._sums_sink is not None and path in _SUMS_PATHS:
                self._begin_sums(path, size, mode, mtime, self._sums_sink)
                return
            if size > limit:
                raise BundleError(
                    f"{where}: member {shown(name)} is {size} bytes, more than the "
                    f"{limit} bytes a reader holds in memory: refused"
                )
            self._current = (path, "capture", size, mode, mtime, None)
            self._collect = bytearray()
            self._begin_data(size, self._collect.extend)
            return
        if path in _SUMS_PATHS:
            raise BundleError(
                f"{where}: member {shown(name)} would collide with the {SUMS_NAME} that "
                "handover adds at the root of every volume; rename it or seal its parent folder"
            )
        extractor = self._extractor
        if kind is not None:
            self.rows.append((path, kind, 0, None, mode, mtime, link))
            if extractor is not None:
                if kind == "dir":
                    extractor.directory(path)
                elif kind == "symlink" and link is not None:
                    extractor.symlink(path, link)
                elif kind == "hardlink" and link is not None:
                    extractor.hardlink(path, path_key(link))
            return
        if typeflag in _SKIPPED_DATA_TYPES:
            self._current = None
            self._begin_data(size, None)
            return
        hasher = hashlib.sha256()
        self._hasher = hasher
        self._current = (path, "file", size, mode, mtime, None)
        if extractor is None:
            self._begin_data(size, hasher.update)
            return
        write = extractor.open_file(path, mode, mtime)
        update = hasher.update

        def sink(view: Any) -> None:
            update(view)
            write(view)

        self._begin_data(size, sink)

    def _begin_sums(self, path: str, size: int, mode: int, mtime: float, sums: SumsSink) -> None:
        """The volume's own SHA256SUMS, passed on as it streams (and written, for open)."""
        self.sums_seen = True
        sums.begin()
        self._current = (path, "sums", size, mode, mtime, None)
        if self._extractor is None:
            self._begin_data(size, sums.write)
            return
        write = self._extractor.open_file(path, mode, mtime)
        feed = sums.write

        def sink(view: Any) -> None:
            feed(view)
            write(view)

        self._begin_data(size, sink)

    def _count_member(self) -> None:
        count = self._count
        self._count = count + 1
        if self._max_members is not None and count >= self._max_members:
            raise BundleError(
                f"{self.where}: more than {self._max_members} members, more than "
                "MANIFEST.json lists: refused"
            )

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
            self._end_collected(bytes(collected))
            return
        current = self._current
        if current is None:
            return
        self._current = None
        path, kind, size, mode, mtime, _ = current
        if self._extractor is not None:
            self._extractor.close_file()
        if kind == "sums":
            assert self._sums_sink is not None
            self._sums_sink.end()
            return
        self.rows.append((path, kind, size, self._hasher.hexdigest(), mode, mtime, None))
        self._hasher = None

    def _end_collected(self, data: bytes) -> None:
        """A collected member ended: the volume's own SHA256SUMS, or an extended header."""
        current = self._current
        if current is not None and current[1] == "capture":
            self._current = None
            path, _, size, mode, mtime, _ = current
            if self._extractor is not None:
                self._extractor.open_file(path, mode, mtime)(data)
                self._extractor.close_file()
            if path in _SUMS_PATHS:
                self.inner_sums = data
                return
            self.captured[path] = data
            self.rows.append((path, "file", size, _sha256(data).hexdigest(), mode, mtime, None))
            return
        ext = self._ext_kind
        if ext == _EXT_PAX:
            self._pax = parse_pax(data, self.where)
        elif ext == _EXT_GLOBAL:
            self._global.update(parse_pax(data, self.where))
            if sum(len(k) + len(v) for k, v in self._global.items()) > MAX_EXTENDED_HEADER_SIZE:
                raise BundleError(f"{self.where}: global PAX headers beyond 1 MiB in all")
        elif ext == _EXT_LONGNAME:
            self._long_name = _decode(data.split(b"\0", 1)[0])
        elif ext == _EXT_LONGLINK:
            self._long_link = _decode(data.split(b"\0", 1)[0])

    # -- results -------------------------------------------------------------------------

    def close(self) -> None:
        """Check that the stream ended properly; raises BundleError on a truncated archive."""
        if self._data_left or self._partial:
            raise BundleError(f"{self.where}: tar stream truncated inside a member")
        if not self.ended:
            raise BundleError(f"{self.where}: tar stream ended without an end-of-archive marker")

    def sums(self) -> FileSums:
        """{path: sha256} of every regular file (hard links count with their target's hash)."""
        if isinstance(self.rows, MemberTable):
            table = self.rows
            rows: Iterable[Row] = table.rows()
            digest_at: Callable[[int], str | None] = table.digest_at
        else:
            listed: list[Row] = self.rows if isinstance(self.rows, list) else list(self.rows)
            rows = listed
            digest_at = lambda position: listed[position][3]  # noqa: E731
        positions: dict[str, int] = {}
        for position, (path, kind, _size, digest, _mode, _mtime, link) in enumerate(rows):
            if kind == "file" and digest is not None:
                positions[path] = position
            elif kind == "hardlink" and link is not None:
                target = positions.get(extract_path(link))
                if target is not None:
                    positions[path] = target
            else:
                positions.pop(path, None)  # a later non-file member replaces an earlier file
        return FileSums(positions, digest_at)

    def members(self, extras: Mapping[str, dict[str, str]] | None = None) -> MemberTable:
        """Every member, in stream order, packed (pass `rows=MemberTable()` to pack as they come).

        `extras` adds a source's facts to the members it names.
        """
        table = self.rows if isinstance(self.rows, MemberTable) else MemberTable(self.rows)
        table.add_extras(extras or {})
        return table
