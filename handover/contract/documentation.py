"""The `documentation` section: where the client's own documents are, to collect at takeover.

A takeover inherits documents that no host inventory finds: the dossier
d'exploitation, network diagrams, licences, third-party contracts. The
playbook names where they are (a folder on a host, an S3 prefix, an export
file of the client's wiki beside the playbook) and the takeover copies them
into the contract's evidence, indexes them in the baseline report and hands
them back in the exit bundle. Each source has a name (a slug): the folder
its documents are stored under, and what a failure names.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Self

from pydantic import Field, field_validator, model_validator

from handover.contract.base import Loc, LocatedProblems, PlaybookModel
from handover.contract.fields import AbsPath, Slug

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_FILES", "DocumentSource", "Documentation"]

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")  # as S3 names buckets
DEFAULT_MAX_BYTES = 20 * 1024**3  # per source: documents, not datasets
DEFAULT_MAX_FILES = 20_000  # per source


class DocumentSource(PlaybookModel):
    """One place holding client documents: exactly one of host+path, s3 or file."""

    name: Slug = Field(description="Source name (slug): the folder its documents are kept under.")
    description: str | None = Field(
        default=None, description="What the source holds, e.g. 'dossier d'exploitation'."
    )
    host: str | None = Field(default=None, description="Perimeter host holding `path`.")
    path: AbsPath | None = Field(default=None, description="Absolute folder on `host`.")
    s3: str | None = Field(default=None, description="s3://bucket/prefix of the documents.")
    file: str | None = Field(
        default=None,
        description="An export file (wiki, document system), relative to the playbook's folder.",
    )
    max_bytes: int = Field(
        default=DEFAULT_MAX_BYTES, ge=1, description="Most bytes collected from this source."
    )
    max_files: int = Field(
        default=DEFAULT_MAX_FILES, ge=1, description="Most files collected from this source."
    )

    @property
    def kind(self) -> str:
        """`host`, `s3` or `file`."""
        if self.s3 is not None:
            return "s3"
        return "file" if self.file is not None else "host"

    @property
    def origin(self) -> str:
        """Where the documents are, for the index and messages."""
        if self.s3 is not None:
            return self.s3
        if self.file is not None:
            return f"file:{self.file}"
        return f"{self.host}:{self.path}"

    @field_validator("s3")
    @classmethod
    def _s3_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        bucket = value.removeprefix("s3://").partition("/")[0]
        if not value.startswith("s3://") or not _BUCKET_RE.match(bucket) or ".." in bucket:
            raise ValueError(f"{value[:80]!r}: not an s3://bucket/prefix URL with a valid bucket")
        return value

    @field_validator("file")
    @classmethod
    def _relative_file(cls, value: str | None) -> str | None:
        if value is None:
            return value
        pure = PurePosixPath(value)
        if not value or pure.is_absolute() or ".." in pure.parts or "\0" in value:
            raise ValueError(
                f"{value[:80]!r}: a path relative to the playbook's folder, without '..'"
            )
        return value

    @model_validator(mode="after")
    def _one_place(self) -> Self:
        given = [k for k in ("path", "s3", "file") if getattr(self, k) is not None]
        if len(given) != 1:
            what = ", ".join(given) if given else "none"
            raise ValueError(f"give exactly one of path (with host), s3 or file (got {what})")
        if self.path is not None and self.host is None:
            raise LocatedProblems([(("host",), "required with path")])
        if self.path is None and self.host is not None:
            raise LocatedProblems([(("host",), "only a path source takes a host")])
        return self


class Documentation(PlaybookModel):
    """The client's documents to collect at takeover and return at exit."""

    sources: list[DocumentSource] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        seen: dict[str, int] = {}
        problems: list[tuple[Loc, str]] = []
        for index, source in enumerate(self.sources):
            if source.name in seen:
                problems.append(
                    (
                        ("sources", index, "name"),
                        f"duplicate source name {source.name!r} "
                        f"(also sources[{seen[source.name]}])",
                    )
                )
            seen.setdefault(source.name, index)
        if problems:
            raise LocatedProblems(problems)
        return self
