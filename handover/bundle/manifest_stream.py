"""Read MANIFEST.json as it streams out of the index, never holding it whole.

A manifest lists every member of every volume: a million files make a few
hundred megabytes of JSON and, parsed into models, gigabytes. The reader
only needs, per volume, its fields, counts and a multiset digest of its
members (see volcheck.py), so the document is parsed incrementally as the
tar parser passes its bytes on: the structure (top-level object, volumes,
members, documents, the keys of `extra`) by hand, each member and every
other value with the standard library's JSON decoder, and each validated
with the same pydantic models as `load_manifest`. Memory is bounded by the
largest single value (capped), not by the document.

The schema is the one `load_manifest` applies (unknown fields refused,
required fields, types); in addition a key repeated in the objects parsed
by hand is refused instead of the last one winning.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from handover.bundle.manifest import FORMAT, MANIFEST_NAME, DocumentRecord, VolumeRecord
from handover.bundle.pathtable import PathTable
from handover.bundle.tarparse import extract_path
from handover.bundle.types import MemberRecord
from handover.bundle.volcheck import Member, MultisetDigest, hardlink_key
from handover.errors import BundleCorrupt

MAX_VALUE_CHARS = 16 << 20  # one member, one document, one key of `extra`, one scalar
RETAIN_MEMBERS = 20_000  # member tuples kept, all volumes together, to name differences
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_Step = Generator[None, None, Any]


class VolumeHead(BaseModel):
    """A volume object of the manifest without its members (checked as VolumeRecord is)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: int
    file: str
    label: str
    origin: str
    size: int
    sha256: str
    tar_size: int


class _Top(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str = FORMAT
    created: str
    provider_key: str
    volumes: list[Any]
    documents: list[Any] = []
    extra: dict[str, Any] = {}


@dataclass
class VolumeOutline:
    """What the reader keeps of a volume of the manifest: fields, counts, members digest."""

    head: VolumeHead
    digest: MultisetDigest
    file_count: int = 0
    data_size: int = 0
    hardlinks: int = 0
    retained: list[Member] | None = None  # the members, for a small volume only

    @property
    def number(self) -> int:
        return self.head.number

    @property
    def file(self) -> str:
        return self.head.file

    @property
    def sha256(self) -> str:
        return self.head.sha256

    @property
    def member_count(self) -> int:
        return self.digest.count


@dataclass
class ManifestOutline:
    """MANIFEST.json as the reader keeps it: no member list, whatever the bundle's size.

    `targets` holds the hard link targets of every volume (see volcheck),
    `key` the multiset key shared with the volume checks.
    """

    format: str
    created: str
    provider_key: str
    volumes: list[VolumeOutline]
    document_count: int
    key: bytes
    targets: PathTable = field(repr=False)


def _invalid(where: str, exc: ValidationError, prefix: str = "") -> BundleCorrupt:
    first = exc.errors()[0]
    loc = ".".join(str(part) for part in first["loc"])
    name = f"{prefix}.{loc}" if prefix and loc else prefix or loc
    return BundleCorrupt(f"{where}: invalid {MANIFEST_NAME}: {name}: {first['msg']}")


class ManifestStream:
    """Push parser: `feed` the bytes of MANIFEST.json, then `close()` for the outline."""

    def __init__(self, where: str, key: bytes, targets: PathTable) -> None:
        self.where = where
        self._key = key
        self._targets = targets
        self._decoder = codecs.getincrementaldecoder("utf-8")("surrogatepass")
        self._text = ""
        self._pos = 0
        self._base = 0  # characters dropped from the front of _text
        self._eof = False
        self._top: dict[str, Any] = {}
        self._volumes: list[VolumeOutline] = []
        self._documents = 0
        self._retained = 0
        self._error: BundleCorrupt | None = None
        self._done = False
        self._run = self._document()
        self._step()

    # -- driving -------------------------------------------------------------------------

    def feed(self, data: Any) -> None:
        if self._error is not None:
            return
        try:
            text = self._decoder.decode(bytes(data))
        except UnicodeDecodeError as exc:
            self._error = BundleCorrupt(f"{self.where}: {MANIFEST_NAME} is not JSON: {exc}")
            return
        if self._pos > 1 << 16:
            self._base += self._pos
            self._text = self._text[self._pos :]
            self._pos = 0
        self._text += text
        self._step()

    def close(self) -> ManifestOutline:
        if self._error is None:
            try:
                self._text += self._decoder.decode(b"", final=True)
            except UnicodeDecodeError as exc:
                self._error = BundleCorrupt(f"{self.where}: {MANIFEST_NAME} is not JSON: {exc}")
        self._eof = True
        self._step()
        if self._error is not None:
            raise self._error
        if not self._done:
            raise self._bad("the document ends too early")
        try:
            top = _Top.model_validate(self._top)
        except ValidationError as exc:
            raise _invalid(self.where, exc) from None
        return ManifestOutline(
            format=top.format,
            created=top.created,
            provider_key=top.provider_key,
            volumes=self._volumes,
            document_count=self._documents,
            key=self._key,
            targets=self._targets,
        )

    def _step(self) -> None:
        if self._error is not None or self._done:
            return
        try:
            next(self._run)
        except StopIteration:
            self._done = True
        except BundleCorrupt as exc:
            self._error = exc

    def _bad(self, what: str) -> BundleCorrupt:
        if self._eof and self._pos >= len(self._text):
            what = "the document ends too early"
        at = self._base + self._pos
        return BundleCorrupt(f"{self.where}: {MANIFEST_NAME} is not JSON: {what} (char {at})")

    # -- tokens --------------------------------------------------------------------------

    def _peek(self) -> _Step:
        """The next character after whitespace ('' at the end of the document)."""
        while True:
            self._pos = _WS.match(self._text, self._pos).end()  # type: ignore[union-attr]
            if self._pos < len(self._text):
                return self._text[self._pos]
            if self._eof:
                return ""
            yield

    def _expect(self, char: str) -> _Step:
        found = yield from self._peek()
        if found != char:
            raise self._bad(f"expected {char!r}")
        self._pos += 1

    def _value(self) -> _Step:
        """One complete JSON value, decoded by the standard library once it is all here."""
        yield from self._peek()
        wait_for = 0
        while True:
            pending = len(self._text) - self._pos
            if pending >= wait_for or self._eof:
                try:
                    value, end = _DECODER.raw_decode(self._text, self._pos)
                except json.JSONDecodeError as exc:
                    if self._eof:
                        raise self._bad(exc.msg) from None
                else:
                    # a number may go on in the next buffer: decide only with text after it
                    if end < len(self._text) or self._eof:
                        if end - self._pos > MAX_VALUE_CHARS:
                            raise self._too_long()
                        self._pos = end
                        return value
                wait_for = max(2 * pending, pending + 65536)
            if pending > MAX_VALUE_CHARS:
                raise self._too_long()
            yield

    def _too_long(self) -> BundleCorrupt:
        at = self._base + self._pos
        return BundleCorrupt(
            f"{self.where}: a value longer than {MAX_VALUE_CHARS} characters at char {at}: "
            "refused (a reader holds one value at a time)"
        )

    def _members(self, on_item: Callable[[Any, int], None]) -> _Step:
        """An array, each item decoded and handed to `on_item(value, index)` in turn."""
        first = yield from self._peek()
        if first != "[":
            return (yield from self._value())  # not a list: the schema check says so
        self._pos += 1
        index = 0
        if (yield from self._peek()) == "]":
            self._pos += 1
            return []
        while True:
            on_item((yield from self._value()), index)
            index += 1
            after = yield from self._peek()
            self._pos += 1
            if after == "]":
                return []
            if after != ",":
                self._pos -= 1
                raise self._bad("expected ',' or ']'")

    def _object(self, on_key: Callable[[str], _Step], unique: bool = True) -> _Step:
        """An object parsed key by key: `on_key(key)` consumes each value. Returns None.

        With `unique` (the top level, volumes: a few known keys) a repeated key
        is refused; `extra` may hold any number of keys and keeps JSON's rule.
        """
        yield from self._expect("{")
        seen: set[str] = set()
        if (yield from self._peek()) == "}":
            self._pos += 1
            return None
        while True:
            if (yield from self._peek()) != '"':
                raise self._bad("expected a key")
            key = yield from self._value()
            if unique:
                if key in seen:
                    raise self._bad(f"key {key!r} appears twice")
                seen.add(key)
            yield from self._expect(":")
            yield from on_key(key)
            after = yield from self._peek()
            self._pos += 1
            if after == "}":
                return None
            if after != ",":
                self._pos -= 1
                raise self._bad("expected ',' or '}'")

    # -- the manifest --------------------------------------------------------------------

    def _document(self) -> _Step:
        if (yield from self._peek()) != "{":
            raise self._bad("not a JSON object")
        yield from self._object(self._top_key)
        if (yield from self._peek()) != "":
            raise self._bad("data after the manifest")

    def _top_key(self, key: str) -> _Step:
        if key == "volumes":
            self._top[key] = yield from self._list_or_value(key, self._volume_item)
        elif key == "documents":
            self._top[key] = yield from self._members(self._document_item)
        elif key == "extra" and (yield from self._peek()) == "{":
            yield from self._object(self._extra_key, unique=False)
            self._top[key] = {}
        elif key in _Top.model_fields:
            self._top[key] = yield from self._value()
        else:  # refused at once: a hostile manifest cannot pile up unknown keys
            raise self._extra_input(key)

    def _extra_input(self, loc: str) -> BundleCorrupt:
        return BundleCorrupt(
            f"{self.where}: invalid {MANIFEST_NAME}: {loc}: Extra inputs are not permitted"
        )

    def _extra_key(self, key: str) -> _Step:
        yield from self._value()  # any JSON value: checked, not kept (readers ignore `extra`)

    def _document_item(self, value: Any, index: int) -> None:
        try:
            DocumentRecord.model_validate(value)
        except ValidationError as exc:
            raise _invalid(self.where, exc, f"documents.{index}") from None
        self._documents += 1

    def _list_or_value(self, key: str, item: Callable[[int], _Step]) -> _Step:
        """An array whose items are objects parsed by `item(index)` (streamed, not kept)."""
        first = yield from self._peek()
        if first != "[":
            return (yield from self._value())
        self._pos += 1
        index = 0
        if (yield from self._peek()) == "]":
            self._pos += 1
            return []
        while True:
            yield from item(index)
            index += 1
            after = yield from self._peek()
            self._pos += 1
            if after == "]":
                return []
            if after != ",":
                self._pos -= 1
                raise self._bad("expected ',' or ']'")

    def _volume_item(self, index: int) -> _Step:
        if (yield from self._peek()) != "{":
            value = yield from self._value()
            try:
                VolumeRecord.model_validate(value)  # not an object: said as load_manifest says it
            except ValidationError as exc:
                raise _invalid(self.where, exc, f"volumes.{index}") from None
            raise BundleCorrupt(f"{self.where}: invalid {MANIFEST_NAME}: volumes.{index}")
        volume = _VolumeReader(self, index)
        yield from self._object(volume.key)
        self._volumes.append(volume.finish())

    def _retain(self, count: int) -> bool:
        """Whether a volume of `count` members so far may keep them (global budget)."""
        return self._retained + count <= RETAIN_MEMBERS

    def _spend(self, count: int) -> None:
        self._retained += count


class _VolumeReader:
    """One volume object: scalars kept, members folded as they are read."""

    def __init__(self, stream: ManifestStream, index: int) -> None:
        self.stream = stream
        self.index = index
        self.scalars: dict[str, Any] = {}
        self.digest = MultisetDigest(stream._key)
        self.links: list[str] = []  # hard link targets, known once `number` is
        self.files = 0
        self.data = 0
        self.hardlinks = 0
        self.members_seen = False
        self.retained: list[Member] | None = []

    def key(self, key: str) -> _Step:
        if key == "members":
            self.members_seen = True
            found = yield from self.stream._members(self.member)
            if found != []:
                self.scalars["members"] = found  # not a list: reported by the schema check
        elif key in VolumeHead.model_fields:
            self.scalars[key] = yield from self.stream._value()
        else:
            raise self.stream._extra_input(f"volumes.{self.index}.{key}")

    def member(self, value: Any, index: int) -> None:
        try:
            record = MemberRecord.model_validate(value)
        except ValidationError as exc:
            prefix = f"volumes.{self.index}.members.{index}"
            raise _invalid(self.stream.where, exc, prefix) from None
        item = (record.path, record.type, record.size, record.sha256, record.link)
        self.digest.add(item)
        if record.type == "file":
            self.files += 1
            self.data += record.size
        elif record.type == "hardlink" and record.link is not None:
            self.hardlinks += 1
            self.links.append(extract_path(record.link))
            if len(self.links) >= 10_000:
                self._flush_links()
        if self.retained is not None:
            if self.stream._retain(len(self.retained) + 1):
                self.retained.append(item)
            else:
                self.retained = None

    def _flush_links(self) -> None:
        number = self.scalars.get("number")
        if not isinstance(number, int):
            return  # `number` comes after the members: kept until the end
        for link in self.links:
            self.stream._targets.set(hardlink_key(number, link), "hardlink")
        self.links = []

    def finish(self) -> VolumeOutline:
        where = self.stream.where
        members = self.scalars.pop("members", [])
        try:
            head = VolumeHead.model_validate(self.scalars)
        except ValidationError as exc:
            raise _invalid(where, exc, f"volumes.{self.index}") from None
        if not self.members_seen:
            raise BundleCorrupt(
                f"{where}: invalid {MANIFEST_NAME}: volumes.{self.index}.members: Field required"
            )
        if members != []:
            raise BundleCorrupt(
                f"{where}: invalid {MANIFEST_NAME}: volumes.{self.index}.members: "
                "Input should be a valid list"
            )
        self._flush_links()
        if self.retained is not None:
            self.stream._spend(len(self.retained))
        return VolumeOutline(
            head=head,
            digest=self.digest,
            file_count=self.files,
            data_size=self.data,
            hardlinks=self.hardlinks,
            retained=self.retained,
        )
