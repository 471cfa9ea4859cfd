"""Playbook template items into checklist items: validated, drafted, merged into a stored checklist.

A phase's items come from the playbook's template (dicts with id, title,
clause, owner, evidence_kind and an optional waived_reason). The template
may change between runs: a playbook rewords an item, adds one, waives one
or drops a waiver. `merge_templates` applies such changes to a stored
checklist without losing its history; the store saves and audits the result.
Kept apart from the store because it is pure: no file, no lock, no log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from handover.checklist.model import Checklist, ChecklistItem, Status
from handover.errors import UsageError
from handover.phases import Phase, parse_phase

_ITEM_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


def template_item(contract: str, phase: Phase, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one template item dict; keep only the fields an item takes from a template."""
    where = f"{contract}/{phase.value}"
    item_id = raw.get("id")
    if not isinstance(item_id, str) or not _ITEM_ID.match(item_id):
        raise UsageError(f"{where}: checklist item id {item_id!r} is not a slug")
    if not isinstance(raw.get("title"), str) or not raw["title"].strip():
        raise UsageError(f"{where}/{item_id}: title is required")
    result: dict[str, Any] = {"id": item_id, "title": raw["title"]}
    for key in ("clause", "owner", "evidence_kind"):
        value = raw.get(key)
        if value is not None:
            result[key] = str(value)
    waived = raw.get("waived_reason")
    if waived is not None and str(waived).strip():
        result["waived_reason"] = str(waived).strip()
    return result


def template_entries(
    contract: str, phase: Phase, template_items: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Validate every template item; UsageError on a duplicate id."""
    entries = [template_item(contract, phase, t) for t in template_items]
    seen: set[str] = set()
    for entry in entries:
        if entry["id"] in seen:
            raise UsageError(f"{contract}/{phase.value}: duplicate checklist item {entry['id']!r}")
        seen.add(entry["id"])
    return entries


def draft_checklist(
    contract: str, phase: Phase | str, template_items: Sequence[Mapping[str, Any]]
) -> Checklist:
    """A checklist built from template items without storing anything (version 0).

    For showing a phase that was never opened: items are pending, or waived
    when the template carries a waived_reason.
    """
    phase = parse_phase(phase)
    checklist = Checklist(contract=contract, phase=phase)
    for raw in template_items:
        entry = template_item(contract, phase, raw)
        reason = entry.pop("waived_reason", None)
        item = ChecklistItem(**entry, actor="playbook")
        if reason:
            item.status, item.reason = Status.WAIVED, reason
        checklist.items.append(item)
    return checklist


@dataclass
class TemplateMerge:
    """What merging a template changed in a checklist, for the audit log and listeners."""

    added: list[str] = field(default_factory=list)
    reworded: list[str] = field(default_factory=list)
    waived: list[tuple[ChecklistItem, Status | None]] = field(default_factory=list)
    unwaived: list[ChecklistItem] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.reworded or self.waived or self.unwaived)


def merge_templates(checklist: Checklist, entries: Sequence[dict[str, Any]]) -> TemplateMerge:
    """Bring `checklist` in line with validated template `entries` (see ChecklistStore.open).

    New items are added (waived at once when the template says so); existing
    items keep their status and evidence but follow the template's wording;
    the playbook's waivers are applied to pending items and withdrawn from
    items it waived itself. Items no longer in the template are kept.
    """
    merge = TemplateMerge()
    for raw in entries:
        entry = dict(raw)
        reason = entry.pop("waived_reason", None)
        current = next((i for i in checklist.items if i.id == entry["id"]), None)
        if current is None:
            checklist.items.append(_new_item(entry, reason, merge))
            continue
        _reword(current, entry, merge)
        _apply_playbook_waiver(current, reason, merge)
    return merge


def _new_item(entry: dict[str, Any], reason: str | None, merge: TemplateMerge) -> ChecklistItem:
    item = ChecklistItem(**entry, actor="playbook")
    if reason:
        item.status, item.reason = Status.WAIVED, reason
        item.finished_at = item.updated_at
        merge.waived.append((item, None))
    merge.added.append(item.id)
    return item


def _reword(current: ChecklistItem, entry: dict[str, Any], merge: TemplateMerge) -> None:
    changed = {k: v for k, v in entry.items() if getattr(current, k) != v}
    if changed:
        for key, value in changed.items():
            setattr(current, key, value)
        merge.reworded.append(current.id)


def _apply_playbook_waiver(
    current: ChecklistItem, reason: str | None, merge: TemplateMerge
) -> None:
    """Waive a pending item the template waives; restore one whose playbook waiver was dropped.

    A waiver given by a person (actor other than `playbook`) is never undone here.
    """
    if reason and current.status is Status.PENDING:
        now = datetime.now(UTC)
        current.status, current.reason, current.actor = (Status.WAIVED, reason, "playbook")
        current.finished_at = current.updated_at = now
        merge.waived.append((current, Status.PENDING))
    elif not reason and current.status is Status.WAIVED and current.actor == "playbook":
        # the playbook dropped its waiver: the obligation is back
        current.status, current.reason = (Status.PENDING, "waiver removed from the playbook")
        current.finished_at, current.updated_at = None, datetime.now(UTC)
        merge.unwaived.append(current)
