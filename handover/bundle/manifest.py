"""MANIFEST.json: what a bundle holds, stored encrypted inside `index.tar.age`.

The manifest lists every volume (file name, size and SHA-256 of the
encrypted file, origin) and every member (path, type, size, SHA-256, mode,
mtime, source facts), plus whatever the caller adds (checklist snapshot,
contract id). Client file names are confidential, so the manifest only ever
travels encrypted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from handover.bundle.members import MemberRow as MemberRow  # re-exported: the row's shape
from handover.bundle.members import MemberTable, member_lines
from handover.bundle.members import member_records as member_records  # re-exported
from handover.errors import BundleCorrupt

MANIFEST_NAME = "MANIFEST.json"
FORMAT = "handover-bundle/1"


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
    members: MemberTable  # given as a list of MemberRecords (or dicts), kept packed

    @property
    def file_count(self) -> int:
        return self.members.file_totals()[0]

    @property
    def data_size(self) -> int:
        return self.members.file_totals()[1]

    def json_chunks(self, indent: str = "") -> Iterator[str]:
        """This record as JSON, one member per line (what `model_dump_json` holds whole).

        Why: dumping a volume of 100,000 members through pydantic builds every
        MemberRecord and the whole text at once; these pieces are rendered
        from the packed columns as they are written.
        """
        head = self.model_dump(mode="json", exclude={"members"})
        yield indent + "{" + ", ".join(f"{_json(k)}: {_json(v)}" for k, v in head.items())
        yield ', "members": ['
        separator = "\n"
        for line in member_lines(self.members):
            yield separator + indent + " " + line
            separator = ",\n"
        yield "]}"


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

    def json_chunks(self) -> Iterator[bytes]:
        """MANIFEST.json in pieces of about 64 KiB: one line per member, never the whole text.

        The same document as pydantic's dump (same keys, order and values),
        laid out for reading: the top-level keys and each volume on a line
        of their own, then one line per member. A name that is not UTF-8 on
        disk is written with JSON escapes; every other character as it is.
        """
        return utf8_batches(self._json_pieces())

    def _json_pieces(self) -> Iterator[str]:
        head = self.model_dump(mode="json", exclude={"volumes", "documents", "extra"})
        yield "{\n" + "".join(f" {_json(k)}: {_json(v)},\n" for k, v in head.items())
        yield ' "volumes": ['
        for number, volume in enumerate(self.volumes):
            yield ",\n" if number else "\n"
            yield from volume.json_chunks(indent="  ")
        yield "\n ],\n" if self.volumes else "],\n"
        documents = ",\n".join(f"  {_json(d.model_dump(mode='json'))}" for d in self.documents)
        listed = f"[\n{documents}\n ]" if documents else "[]"
        yield f' "documents": {listed},\n'
        yield f' "extra": {_json(self.extra, indent=1)}\n}}'

    def to_json(self) -> bytes:
        """The whole of MANIFEST.json (small manifests; the writer takes `json_chunks`)."""
        return b"".join(self.json_chunks())


def _json(value: Any, indent: int | None = None) -> str:
    """A JSON value: UTF-8 text as it is, escaped only where a name is not UTF-8."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, indent=indent)
    return text


#: about how much text `utf8_batches` gathers before it encodes and hands it on
BATCH_SIZE = 1 << 16


def utf8_batches(pieces: Iterable[str], size: int = BATCH_SIZE) -> Iterator[bytes]:
    """`pieces` joined and encoded in batches of about `size` characters, never all at once.

    Why: a volume's record is one small piece per member; joining the whole
    text before writing it held it three times over (pieces, text, bytes),
    some 25 MiB for each volume of 30,000 files, and an exit's volumes often
    end together.
    """
    batch: list[str] = []
    gathered = 0
    for piece in pieces:
        batch.append(piece)
        gathered += len(piece)
        if gathered >= size:
            yield "".join(batch).encode("utf-8")
            batch.clear()
            gathered = 0
    if batch:
        yield "".join(batch).encode("utf-8")


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
