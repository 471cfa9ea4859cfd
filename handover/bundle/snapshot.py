"""Hash a dataset without writing anything: the takeover baseline.

The same tar stream and parser as a seal, without encryption or output, so
a baseline taken on day one and a bundle sealed at exit describe members
the same way (paths as `tar -x` creates them, SHA-256 of the content).
"""

from __future__ import annotations

from collections.abc import Callable

from handover.bundle.tarstream import TarParser, pump_tar
from handover.bundle.types import MemberRecord, VolumeSource


def snapshot_source(
    source: VolumeSource, *, progress: Callable[[int], None] | None = None
) -> list[MemberRecord]:
    """Every member of `source` with its SHA-256, in stream order.

    Raises ConnectorError when the source fails, BundleError when its stream
    is not a tar archive.
    """
    parser = TarParser(source.label)
    with source.open_tar() as stream:
        pump_tar(stream, parser, None, progress=progress)
    return parser.members(source.member_extras())
