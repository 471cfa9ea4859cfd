"""A bundle as it may be recorded outside the writer: counts, sizes and hashes, no file names.

The writer's records (`VolumeRecord`, `BundleResult`) list every member of
every volume: client file names, which stay inside the sealed index. Task
results, logs, the phase evidence and the exit report take these summaries
instead. Apart from the writer because they are what leaves it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from handover.bundle.manifest import VolumeRecord
from handover.bundle.writer import BundleResult


class VolumeSummary(BaseModel):
    """A volume without its member names: what a task may return or log."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: int
    file: str  # bundle-relative path of the .tar.age
    size: int  # bytes of the encrypted volume
    sha256: str
    files: int  # regular files inside
    bytes: int  # their total size


def volume_summary(record: VolumeRecord) -> VolumeSummary:
    return VolumeSummary(
        number=record.number,
        file=record.file,
        size=record.size,
        sha256=record.sha256,
        files=record.file_count,
        bytes=record.data_size,
    )


class SealedBundle(BaseModel):
    """A sealed bundle as the flow records it: the writer's result, volumes summarised."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    location: str
    files: dict[str, str]  # bundle-relative path -> SHA-256, as in SHA256SUMS
    manifest_sha256: str
    provider_key: str
    created: str
    volumes: list[VolumeSummary]


def sealed_bundle(result: BundleResult) -> SealedBundle:
    """The writer's result with its volumes summarised."""
    return SealedBundle(
        location=result.location,
        files=result.files,
        manifest_sha256=result.manifest_sha256,
        provider_key=result.provider_key,
        created=result.created,
        volumes=[volume_summary(v) for v in result.volumes],
    )
