"""Hash a dataset without writing anything: the takeover baseline.

The same tar stream and parser as a seal, without encryption or output, so
a baseline taken on day one and a bundle sealed at exit describe members
the same way (paths as `tar -x` creates them, SHA-256 of the content).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from handover.bundle.members import MemberTable
from handover.bundle.pump import pump_tar
from handover.bundle.sums import render_sums
from handover.bundle.tarparse import TarParser
from handover.bundle.types import MemberRecord, VolumeSource


def snapshot_source(
    source: VolumeSource, *, progress: Callable[[int], None] | None = None
) -> MemberTable:
    """Every member of `source` with its SHA-256, in stream order.

    Raises ConnectorError when the source fails, BundleError when its stream
    is not a tar archive.
    """
    parser = TarParser(source.label, rows=MemberTable())
    with source.open_tar() as stream:
        pump_tar(stream, parser, None, progress=progress)
    return parser.members(source.member_extras())


def snapshot_digest(members: Iterable[MemberRecord]) -> str:
    """SHA-256 of the dataset's `SHA256SUMS` as `sha256sum` would list it (files only, sorted).

    A volume sealed later from unchanged data carries a `SHA256SUMS` member
    with exactly these bytes, so `sha256sum SHA256SUMS` on the extracted
    volume prints this digest when nothing changed since the baseline.
    """
    entries = {m.path: m.sha256 for m in members if m.type == "file" and m.sha256}
    return hashlib.sha256(render_sums(entries)).hexdigest()
