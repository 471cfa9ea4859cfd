"""A volume's members packed in columns, and their MANIFEST.json lines rendered from there.

Why: an exit holds every volume's member list from the moment the volume is
sealed until the index is written. As MemberRecords (a pydantic object, its
dict, a path, a hex digest, numbers) each member costs about 700 bytes, and
millions of small objects made while parsing, alive for the whole exit and
interleaved with the parser's temporaries, keep Python's allocator from
giving memory back: an exit of 100,000 files held about 200 MB after its
exports. Packed, a member costs about 62 bytes (32 for the SHA-256) plus
what its UTF-8 path does not share with the path before it, in a few large
buffers: paths are front-coded (the length of the prefix shared with the
previous path, then the rest), since a tar stream lists a folder's files
together and their folder is most of their path. Every `RESTART` paths one
is stored whole, so reading one member decodes at most that many. A
source's facts about a member (an S3 object's key, ETag, date and class) are
packed too: ~140 bytes where a dict of str cost 370-510, which a prefix of a
million objects would hold for the rest of the exit.

`MemberTable` is a read-only sequence of MemberRecords: records are built
one at a time when read, so every reader of `VolumeRecord.members` keeps
working. It is also the tar parser's row sink (`append`), so rows are packed
as the stream passes, never held as tuples. A value the columns cannot hold
exactly (a digest that is not lowercase hex, a negative size, a mode beyond
32 bits: only from a hand-made manifest) is kept as its record, whole.

`member_lines` renders each member as one line of JSON, the same values
pydantic writes, so a manifest of any size is written as it is rendered.
"""

from __future__ import annotations

import json
import struct
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

from pydantic import BaseModel, GetCoreSchemaHandler
from pydantic_core import core_schema

from handover.bundle.types import MemberRecord

# A member row as the tar parser records it while the stream passes:
# (path, type, size, sha256 or None, mode, mtime, link or None).
MemberRow = tuple[str, str, int, str | None, int, float, str | None]

KINDS = ("file", "dir", "symlink", "hardlink", "char", "block", "fifo")
_KIND_CODES = {kind: code for code, kind in enumerate(KINDS)}
_HAS_DIGEST = 0x80
_WHOLE = 0x7F  # the member is kept as its record (`_whole`)
_NO_DIGEST = bytes(32)
_HEX = frozenset("0123456789abcdef")
_MAX_U32 = (1 << 32) - 1
_MAX_U64 = (1 << 64) - 1
_NO_EXTRA: dict[str, str] = {}
_LENGTH = struct.Struct("<I")
#: every RESTART-th path is stored whole: a random read decodes at most this many
RESTART = 16
_MAX_SHARED = (1 << 16) - 1  # a shared prefix is counted in an unsigned short


def pack_values(values: Iterable[str]) -> bytes:
    """Strings as one bytes object: each as its UTF-8 (lone surrogates kept) after its length.

    Why: a source's facts per member (an S3 object's key, ETag, date and
    class) cost 370-510 bytes as a dict of str, ~140 packed; an S3 prefix of
    a million objects held half a gigabyte of them until the index was written.
    """
    out = bytearray()
    for value in values:
        data = value.encode("utf-8", "surrogatepass")
        out += _LENGTH.pack(len(data))
        out += data
    return bytes(out)


def unpack_values(packed: bytes | memoryview, count: int) -> list[str]:
    """The `count` strings `pack_values` packed first in `packed`."""
    values, at = [], 0
    for _ in range(count):
        (length,) = _LENGTH.unpack_from(packed, at)
        at += _LENGTH.size
        values.append(bytes(packed[at : at + length]).decode("utf-8", "surrogatepass"))
        at += length
    return values


_MEMBER_FIELDS = frozenset(MemberRecord.model_fields)
_MODEL_SLOTS = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")


def _fast_records(rows: Iterable[MemberRow], extras: Mapping[str, dict[str, str]]) -> list[Any]:
    """MemberRecords set up as `model_construct` sets them, at about half its cost.

    Why: sealing 100,000 small files built 100,000 records through
    `model_construct` (a Python loop over the fields per record), the largest
    cost after the data had finished streaming. No check is lost:
    `model_construct` validated nothing either, the parser typed every value
    (and refused what it must), and readers validate MANIFEST.json whole.
    `_records_builder` falls back to `model_construct` if pydantic lays its
    instances out differently.

    Records are built when a MemberTable is read (it keeps the members packed,
    not as records) or by callers that want a list: all share one fields-set
    per layout and one empty `extra` (500 of 900 bytes per record otherwise).
    Nothing mutates them: MemberRecord is frozen (pydantic refuses
    assignment before touching the fields-set), `model_copy` copies the set,
    and no caller writes into a record's `extra`.
    """
    new = object.__new__
    put = object.__setattr__
    with_link = set(_MEMBER_FIELDS)
    without_link = set(_MEMBER_FIELDS - {"link"})
    no_extra: dict[str, str] = {}
    out: list[Any] = []
    append = out.append
    get = extras.get
    for path, kind, size, digest, mode, mtime, link in rows:
        record = new(MemberRecord)
        put(
            record,
            "__dict__",
            {
                "path": path,
                "type": kind,
                "size": size,
                "sha256": digest,
                "mode": mode,
                "mtime": mtime,
                "link": link,
                "extra": get(path, no_extra),
            },
        )
        put(record, "__pydantic_fields_set__", with_link if link is not None else without_link)
        put(record, "__pydantic_extra__", None)
        put(record, "__pydantic_private__", None)
        append(record)
    return out


def _constructed_records(
    rows: Iterable[MemberRow], extras: Mapping[str, dict[str, str]]
) -> list[MemberRecord]:
    """MemberRecords through pydantic's own `model_construct` (the reference, and the fallback)."""
    out: list[MemberRecord] = []
    construct = MemberRecord.model_construct
    for path, kind, size, digest, mode, mtime, link in rows:
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


def _same_layout(a: object, b: object) -> bool:
    return all(getattr(a, slot, None) == getattr(b, slot, None) for slot in _MODEL_SLOTS)


def _records_builder() -> Any:
    """`_fast_records` if it builds what `model_construct` does on this pydantic, else that."""
    samples: list[MemberRow] = [
        ("a/b", "file", 3, "0" * 64, 0o644, 1.5, None),
        ("a/l", "symlink", 0, None, 0o777, 2.0, "b"),
    ]
    extras = {"a/b": {"etag": "x"}}
    if tuple(BaseModel.__slots__) != _MODEL_SLOTS:
        return _constructed_records
    fast, reference = _fast_records(samples, extras), _constructed_records(samples, extras)
    if all(_same_layout(x, y) for x, y in zip(fast, reference, strict=True)):
        return _fast_records
    return _constructed_records


_build_records = _records_builder()


def member_records(
    rows: Iterable[MemberRow], extras: Mapping[str, dict[str, str]] | None = None
) -> list[MemberRecord]:
    """The MemberRecords of parsed rows, in order; `extras` adds source facts by path."""
    return _build_records(rows, extras or {})  # type: ignore[no-any-return]


def _packable_digest(digest: str | None) -> bool:
    return digest is None or (len(digest) == 64 and _HEX.issuperset(digest))


class MemberTable(Sequence[MemberRecord]):
    """The members of one volume, in stream order (see the module's docstring)."""

    __slots__ = (
        "_codes",
        "_digests",
        "_ends",
        "_extra_at",
        "_extra_blob",
        "_extra_keys",
        "_extra_shapes",
        "_links",
        "_modes",
        "_mtimes",
        "_paths",
        "_previous",
        "_shared",
        "_sizes",
        "_whole",
    )

    def __init__(self, rows: Iterable[MemberRow] = ()) -> None:
        # front-coded paths: member i is the first _shared[i] bytes of member i-1's path,
        # then _paths[_ends[i-1]:_ends[i]]; _shared is 0 at every RESTART-th member
        self._paths = bytearray()
        self._ends = array("Q")
        self._shared = array("H")
        self._previous = b""  # the last path appended, whole
        self._codes = bytearray()
        self._sizes = array("Q")
        self._digests = bytearray()
        self._modes = array("I")
        self._mtimes = array("d")
        self._links: dict[int, str] = {}
        # A member's extra (a source's facts: S3 key, ETag...) packed: its keys are a shape
        # shared by all members alike, its values `pack_values` at _extra_at[index] in the
        # blob (-1: none). The offsets exist once a first extra is set.
        self._extra_at: array[int] | None = None
        self._extra_blob = bytearray()
        self._extra_shapes: dict[tuple[str, ...], int] = {}
        self._extra_keys: list[tuple[str, ...]] = []  # the shapes by number
        self._whole: dict[int, MemberRecord] = {}
        for row in rows:
            self.append(row)

    # -- building --------------------------------------------------------------------

    def append(self, row: MemberRow, /) -> None:
        """Add one parsed row (the tar parser's RowSink)."""
        path, kind, size, digest, mode, mtime, link = row
        code = _KIND_CODES.get(kind)
        if (
            code is None
            or not 0 <= size <= _MAX_U64
            or not 0 <= mode <= _MAX_U32
            or not _packable_digest(digest)
        ):
            self._append_whole(_record(row, _NO_EXTRA))
            return
        self._append_path(path.encode("utf-8", "surrogatepass"))
        if digest is None:
            self._codes.append(code)
            self._digests += _NO_DIGEST
        else:
            self._codes.append(code | _HAS_DIGEST)
            self._digests += bytes.fromhex(digest)
        self._sizes.append(size)
        self._modes.append(mode)
        self._mtimes.append(mtime)
        if link is not None:
            self._links[len(self._codes) - 1] = link

    def _append_path(self, encoded: bytes) -> None:
        shared = 0
        if len(self._codes) % RESTART:
            shared = _shared_prefix(self._previous, encoded)
        self._paths += encoded[shared:] if shared else encoded
        self._ends.append(len(self._paths))
        self._shared.append(shared)
        self._previous = encoded

    def _append_whole(self, record: MemberRecord) -> None:
        index = len(self._codes)
        self._whole[index] = record
        self._append_path(b"")  # keeps the columns aligned; the record holds the path
        self._codes.append(_WHOLE)
        self._digests += _NO_DIGEST
        self._sizes.append(0)
        self._modes.append(0)
        self._mtimes.append(0.0)

    @classmethod
    def from_records(cls, records: Iterable[MemberRecord]) -> MemberTable:
        """A table of records read elsewhere (a saved volume, a manifest)."""
        table = cls()
        for record in records:
            before = len(table._whole)
            table.append(_row_of(record))
            if record.extra:
                if len(table._whole) > before:
                    table._whole[len(table) - 1] = record
                else:
                    table._set_extra(len(table) - 1, record.extra)
        return table

    def add_extras(self, extras: Mapping[str, dict[str, str]]) -> None:
        """Attach a source's facts (S3 ETag, version...) to the members they name."""
        if not extras:
            return
        for index, packed_path in enumerate(self._path_strings()):
            whole = self._whole.get(index)
            extra = extras.get(whole.path if whole is not None else packed_path)
            if extra is None:
                continue
            if whole is not None:
                self._whole[index] = whole.model_copy(update={"extra": extra})
            else:
                self._set_extra(index, extra)

    def _set_extra(self, index: int, extra: Mapping[str, str]) -> None:
        if not extra:
            return
        if self._extra_at is None:
            self._extra_at = array("q")
        if len(self._extra_at) < len(self):
            self._extra_at.extend(array("q", [-1]) * (len(self) - len(self._extra_at)))
        keys = tuple(extra)
        shape = self._extra_shapes.get(keys)
        if shape is None:
            shape = self._extra_shapes[keys] = len(self._extra_keys)
            self._extra_keys.append(keys)
        self._extra_at[index] = len(self._extra_blob)
        self._extra_blob += _LENGTH.pack(shape)
        self._extra_blob += pack_values(extra[key] for key in keys)

    def _extra(self, index: int) -> dict[str, str]:
        """The packed extra of a member not kept whole (a new dict: the table keeps none)."""
        at = -1 if self._extra_at is None or index >= len(self._extra_at) else self._extra_at[index]
        if at < 0:
            return _NO_EXTRA
        (shape,) = _LENGTH.unpack_from(self._extra_blob, at)
        keys = self._extra_keys[shape]
        body = memoryview(self._extra_blob)[at + _LENGTH.size :]
        try:
            return dict(zip(keys, unpack_values(body, len(keys)), strict=True))
        finally:
            body.release()

    # -- reading ---------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._codes)

    @overload
    def __getitem__(self, index: int) -> MemberRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[MemberRecord]: ...

    def __getitem__(self, index: int | slice) -> MemberRecord | list[MemberRecord]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("member index out of range")
        whole = self._whole.get(index)
        if whole is not None:
            return whole
        return _record(self._row(index), self._extra(index))

    def __iter__(self) -> Iterator[MemberRecord]:
        whole = self._whole
        for index, row in enumerate(self.rows()):
            record = whole.get(index)
            yield record if record is not None else _record(row, self._extra(index))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"MemberTable({len(self)} members)"

    def _path_strings(self) -> Iterator[str]:
        paths, shared_of, start, path = self._paths, self._shared, 0, b""
        for index, end in enumerate(self._ends):
            path = _front_decoded(path, shared_of[index], paths[start:end])
            yield path.decode("utf-8", "surrogatepass")
            start = end

    def _path_at(self, index: int) -> str:
        """The path of member `index`, decoded from the last whole one before it."""
        ends, paths, shared_of = self._ends, self._paths, self._shared
        path = b""
        for at in range(index - index % RESTART, index + 1):
            path = _front_decoded(path, shared_of[at], paths[ends[at - 1] if at else 0 : ends[at]])
        return path.decode("utf-8", "surrogatepass")

    def _row(self, index: int) -> MemberRow:
        path = self._path_at(index)
        code = self._codes[index]
        digest = self._digests[32 * index : 32 * index + 32].hex() if code & _HAS_DIGEST else None
        return (
            path,
            KINDS[code & ~_HAS_DIGEST],
            self._sizes[index],
            digest,
            self._modes[index],
            self._mtimes[index],
            self._links.get(index),
        )

    def digest_at(self, index: int) -> str | None:
        """The SHA-256 (hex) of the member at `index`, None for a member without one."""
        code = self._codes[index]
        if code == _WHOLE:
            return self._whole[index].sha256
        return self._digests[32 * index : 32 * index + 32].hex() if code & _HAS_DIGEST else None

    def rows(self) -> Iterator[MemberRow]:
        """Every member as a parser row (a member kept whole gives its record's values)."""
        digests = memoryview(self._digests)
        links, whole = self._links, self._whole
        for index, path in enumerate(self._path_strings()):
            code = self._codes[index]
            if code == _WHOLE:
                yield _row_of(whole[index])
                continue
            yield (
                path,
                KINDS[code & ~_HAS_DIGEST],
                self._sizes[index],
                digests[32 * index : 32 * index + 32].hex() if code & _HAS_DIGEST else None,
                self._modes[index],
                self._mtimes[index],
                links.get(index),
            )

    def file_totals(self) -> tuple[int, int]:
        """(regular files, their bytes), without building records."""
        count = total = 0
        for index, code in enumerate(self._codes):
            if code == _WHOLE:
                record = self._whole[index]
                if record.type == "file":
                    count += 1
                    total += record.size
            elif (code & ~_HAS_DIGEST) == 0:  # a regular file
                count += 1
                total += self._sizes[index]
        return count, total

    def file_paths(self) -> Iterator[str]:
        """The paths of the regular files, in order."""
        for path, kind, *_ in self.rows():
            if kind == "file":
                yield path

    def extra_of(self, index: int) -> dict[str, str]:
        whole = self._whole.get(index)
        return whole.extra if whole is not None else self._extra(index)

    # -- pydantic ----------------------------------------------------------------------

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Validated as a list of MemberRecords, packed after; serialised as that list."""
        as_list = handler.generate_schema(list[MemberRecord])
        from_list = core_schema.no_info_after_validator_function(cls.from_records, as_list)

        def table_or_list(value: Any, validate: core_schema.ValidatorFunctionWrapHandler) -> Any:
            # A table as it is; anything else checked as the list it stands for, so errors
            # read as they did when the field was a list.
            return value if isinstance(value, cls) else validate(value)

        return core_schema.no_info_wrap_validator_function(
            table_or_list,
            from_list,
            serialization=core_schema.plain_serializer_function_ser_schema(
                list, return_schema=as_list
            ),
        )


def _front_decoded(before: bytes, shared: int, rest: bytes | bytearray) -> bytes:
    """A front-coded path whole again: `shared` bytes of the path `before` it, then `rest`."""
    return before[:shared] + rest if shared else bytes(rest)


def _shared_prefix(before: bytes, path: bytes) -> int:
    """How many leading bytes `path` shares with `before` (at most _MAX_SHARED).

    The common case first, at C speed: the same folder as the path before.
    """
    folder = before.rfind(b"/") + 1
    high = min(len(before), len(path), _MAX_SHARED)
    low = min(folder, high) if folder and path.startswith(before[:folder]) else 0  # maybe more
    while low < high:  # the longest equal prefix, by halves
        middle = (low + high + 1) // 2
        if before[:middle] == path[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _row_of(record: MemberRecord) -> MemberRow:
    """A record's values as a parser row (the inverse of `_record`, extra aside)."""
    return (
        record.path,
        record.type,
        record.size,
        record.sha256,
        record.mode,
        record.mtime,
        record.link,
    )


def _record(row: MemberRow, extra: dict[str, str]) -> MemberRecord:
    path, *_ = row
    return member_records([row], {path: extra} if extra else None)[0]


# -- MANIFEST.json lines -------------------------------------------------------------------

_encode_text = json.encoder.encode_basestring  # type: ignore[attr-defined]
_encode_ascii = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


def _text(value: str) -> str:
    """A JSON string: UTF-8 as it is, escaped only when the name is not UTF-8 (surrogates)."""
    if value.isascii():
        return _encode_text(value)  # type: ignore[no-any-return]
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _encode_ascii(value)  # type: ignore[no-any-return]
    return _encode_text(value)  # type: ignore[no-any-return]


def member_line(row: MemberRow, extra: Mapping[str, str]) -> str:
    """One member as a JSON object on one line, its fields in MemberRecord's order."""
    path, kind, size, digest, mode, mtime, link = row
    extra_text = (
        "{" + ", ".join(f"{_text(k)}: {_text(v)}" for k, v in extra.items()) + "}"
        if extra
        else "{}"
    )
    return (
        f'{{"path": {_text(path)}, "type": {_text(kind)}, "size": {size}, '
        f'"sha256": {"null" if digest is None else _text(digest)}, "mode": {mode}, '
        f'"mtime": {float(mtime)!r}, "link": {"null" if link is None else _text(link)}, '
        f'"extra": {extra_text}}}'
    )


def member_lines(members: Sequence[MemberRecord]) -> Iterator[str]:
    """Each member's JSON line, in order (from the columns when `members` is a MemberTable)."""
    if not isinstance(members, MemberTable):
        for record in members:
            yield member_line(_row_of(record), record.extra)
        return
    # The hot path (an exit renders every member): a packed member's type is one of KINDS
    # and its digest lowercase hex, so only names need escaping, and plain ASCII ones go
    # straight to the C encoder.
    whole, extra_at, encode = members._whole, members._extra_at, _encode_text
    for index, row in enumerate(members.rows()):
        extra = extra_at is not None and index < len(extra_at) and extra_at[index] >= 0
        if index in whole or extra or row[6] is not None:
            yield member_line(row, members.extra_of(index))
            continue
        path, kind, size, digest, mode, mtime, _ = row
        name = encode(path) if path.isascii() else _text(path)
        sha256 = "null" if digest is None else f'"{digest}"'
        yield (
            f'{{"path": {name}, "type": "{kind}", "size": {size}, "sha256": {sha256}, '
            f'"mode": {mode}, "mtime": {mtime!r}, "link": null, "extra": {{}}}}'
        )
