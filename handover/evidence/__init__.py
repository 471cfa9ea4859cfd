"""The evidence mirror: a contract's folder kept on S3 for every worker (HANDOVER_EVIDENCE_URL).

A package of its own, above `handover.state` (the index, `evidence_index`),
`handover.connectors.s3` (the client) and `handover.checklist` (the default
store): inside `handover.state` it would close an import cycle with both.
See `mirror` for what it does and why.
"""

from __future__ import annotations

from handover.evidence.mirror import (
    EVIDENCE_URL_ENV,
    ErasedObjects,
    EvidenceMirror,
    SyncCounts,
    default_worker,
    evidence_mirror,
    refresh_for_reading,
)

__all__ = [
    "EVIDENCE_URL_ENV",
    "ErasedObjects",
    "EvidenceMirror",
    "SyncCounts",
    "default_worker",
    "evidence_mirror",
    "refresh_for_reading",
]
