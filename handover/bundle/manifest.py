"""MANIFEST.json: what a bundle holds, stored encrypted inside `index.tar.age`.

The manifest lists every volume (file name, size and SHA-256 of the
encrypted file, origin) and every member (path, type, size, SHA-256, mode,
mtime, source facts), plus whatever the caller adds (checklist snapshot,
contract id). Client file names are confidential, so the manifest only ever
travels encrypted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from handover.bundle.types import MemberRecord
from handover.errors import BundleCorrupt

MANIFEST_NAME = "MANIFEST.json"
FORMAT = "handover-bundle/1"

# A member row as the tar parser records it while the stream passes:
# (path, type, size, sha256 or None, mode, mtime, link or None).
MemberRow = tuple[str, str, int, str | None, int, float, str | None]

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

    The records are a volume's largest lasting memory (an exit holds every
    volume's until its manifest is written): so all records share one
    fields-set per layout and one empty `extra` (500 of 900 bytes per record
    otherwise). Nothing mutates them: MemberRecord is frozen (pydantic refuses
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


class VolumeRecord(BaseModel):
    """One sealed volume: where it is, what it weighs, what it holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: int
    file: str  # bundle-relative: volumes/0001-web01-www.tar.age
    label: str
    origin: str
    size: int  # bytes of the encrypted file
    sha256: str  # of the encrypted file, as in the outer SHA256SUMS
    tar_size: int  # bytes of the plaintext tar stream, SHA256SUMS member included
    members: list[MemberRecord]

    @property
    def file_count(self) -> int:
        return sum(1 for member in self.members if member.type == "file")

    @property
    def data_size(self) -> int:
        return sum(member.size for member in self.members if member.type == "file")


class DocumentRecord(BaseModel):
    """A document of the index (audit log, reports, credentials.kdbx)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    size: int
    sha256: str


class Manifest(BaseModel):
    """The whole of MANIFEST.json; `extra` holds the caller's keys."""

    model_config = ConfigDict(extra="forbid")

    format: str = FORMAT
    created: str
    provider_key: str  # the signing public key line
    volumes: list[VolumeRecord]
    documents: list[DocumentRecord] = []
    extra: dict[str, Any] = {}

    def to_json(self) -> bytes:
        """Serialise in pydantic-core (no intermediate dicts: 20,000 members cost ~6 MB, not 60)."""
        try:
            return self.model_dump_json(indent=1).encode("utf-8")
        except (UnicodeEncodeError, ValueError):  # names that are not UTF-8 on disk: escape them
            data = self.model_dump(mode="json")
            return json.dumps(data, ensure_ascii=True, indent=1).encode("ascii")


def load_manifest(data: bytes, where: str) -> Manifest:
    """Parse MANIFEST.json; raises BundleCorrupt naming `where` when it is not one."""
    try:
        return Manifest.model_validate(json.loads(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise BundleCorrupt(f"{where}: invalid {MANIFEST_NAME}: {field}: {first['msg']}") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise BundleCorrupt(f"{where}: {MANIFEST_NAME} is not JSON: {exc}") from exc
