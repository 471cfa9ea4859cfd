"""The checklists as the bundle carries them: every evidence path points into the bundle.

The provider's checklists name evidence by its path in the provider's
contract folder, and the exit erases much of that folder (inventories,
baselines, working copies). A checklist that leaves with the client must
let the client check each piece of evidence with the bundle alone, long
after the provider's copies are gone. So each evidence file under the
contract folder is sealed into the index as `evidence/<path in the contract
folder>`, and the bundle's copy of the checklist names it there, with the
same SHA-256. Evidence outside the contract folder (a delivery folder) keeps
its path and is marked as such; its hash still proves what it was.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from handover.checklist.model import Checklist

EVIDENCE_DIR = "evidence"


def bundle_checklists(
    checklists: Mapping[str, Checklist], contract_root: Path
) -> tuple[dict[str, bytes], dict[str, str], dict[str, object]]:
    """Rewrite evidence paths into the bundle.

    Returns the checklists as index documents (`checklists/<phase>.json` →
    JSON bytes), the evidence files to seal (`evidence/...` → provider file)
    and the same checklists as plain data for the manifest.
    """
    root = contract_root.resolve()
    documents: dict[str, bytes] = {}
    evidence_files: dict[str, str] = {}
    snapshot: dict[str, object] = {}
    for phase, checklist in checklists.items():
        data = checklist.model_dump(mode="json")
        for item in data["items"]:
            for evidence in item["evidence"]:
                path = evidence.get("path")
                if not path:
                    continue
                name = _index_name(Path(path), root)
                if name is None:
                    evidence["note"] = _join(evidence.get("note"), "outside the bundle")
                    continue
                if Path(path).is_file():
                    evidence_files[name] = str(Path(path))
                    evidence["path"] = name
                else:
                    evidence["note"] = _join(evidence.get("note"), "file gone before sealing")
        snapshot[phase] = data
        text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        documents[f"checklists/{phase}.json"] = text.encode("utf-8")
    return documents, evidence_files, snapshot


def _index_name(path: Path, root: Path) -> str | None:
    """`evidence/<path relative to the contract folder>`, or None outside it."""
    try:
        relative = path.resolve().relative_to(root)
    except ValueError:
        return None
    return str(PurePosixPath(EVIDENCE_DIR, *relative.parts))


def _join(note: str | None, extra: str) -> str:
    return f"{note}; {extra}" if note else extra
