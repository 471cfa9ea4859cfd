"""MANIFEST.json: what a bundle holds, stored encrypted inside `index.tar.age`.

The manifest lists every volume (file name, size and SHA-256 of the
encrypted file, origin) and every member (path, type, size, SHA-256, mode,
mtime, source facts), plus whatever the caller adds (checklist snapshot,
contract id). Client file names are confidential, so the manifest only ever
travels encrypted.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from handover.bundle.types import MemberRecord
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
