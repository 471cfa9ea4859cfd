"""The checklist of each phase: the packaged templates and the playbook's `phases` section.

Every contract starts from the same checklist per phase
(`handover/contract/templates/<phase>.yaml`); a playbook adds items, waives
the ones the contract does not need and rewords titles. No flow ticks an item
a playbook adds, so such an item says `manual: true`: a person ticks it with
`handover item done` (`validate` refuses an added item without it, see
`readiness`). Separate from the phase list (`phases.py`), which the
checklist store and the CLI use without any playbook.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any, Literal, Self

import yaml
from pydantic import Field, model_validator

from handover.contract.base import Loc, LocatedProblems, PlaybookModel
from handover.contract.fields import NonEmpty, Slug
from handover.contract.yaml_lines import FAST_LOADER
from handover.errors import UsageError
from handover.phases import PHASES, parse_phase

Owner = Literal["provider", "client"]
EvidenceKind = Literal[
    "document", "report", "bundle", "inventory", "snapshot", "human", "log", "certificate"
]


class ChecklistItemSpec(PlaybookModel):
    """A checklist item as a template or a playbook `add` states it."""

    id: Slug
    title: NonEmpty
    clause: NonEmpty = Field(description="Contract clause or regulation served.")
    owner: Owner
    evidence_kind: EvidenceKind
    manual: bool = Field(
        default=False,
        description="A person ticks this item with `handover item done` (no flow does). "
        "An item a playbook adds is ticked by no flow, so it must say `manual: true`.",
    )


TitleLanguage = Literal["fr", "en"]
TITLE_LANGUAGES: tuple[TitleLanguage, ...] = ("fr", "en")


class TemplateTitles(PlaybookModel):
    """A template item's title in each language a contract may be written in."""

    fr: NonEmpty
    en: NonEmpty


class TemplateItemSpec(PlaybookModel):
    """A packaged template item: a title per language (`title: {fr: ..., en: ...}`).

    The checklist of a contract is written in its language (`contract.language`):
    `load_phase_template` picks that title. A playbook's added or reworded items
    keep one string, written in the contract's language by whoever writes it.
    """

    id: Slug
    title: TemplateTitles
    clause: NonEmpty
    owner: Owner
    evidence_kind: EvidenceKind


_template_cache: dict[str, list[TemplateItemSpec]] = {}


def _template_specs(phase: str) -> list[TemplateItemSpec]:
    phase = parse_phase(phase)
    if phase not in _template_cache:
        text = (
            resources.files("handover.contract")
            .joinpath("templates", f"{phase}.yaml")
            .read_text("utf-8")
        )
        data = yaml.load(text, Loader=FAST_LOADER)  # a safe loader
        _template_cache[phase] = [TemplateItemSpec.model_validate(item) for item in data["items"]]
    return _template_cache[phase]


def load_phase_template(phase: str, language: str = "fr") -> list[dict[str, Any]]:
    """Return the default checklist items of `phase` (handover/contract/templates/<phase>.yaml).

    Each item is a dict with id, title (in `language`: `fr`, the contracts'
    default, or `en`), clause, owner and evidence_kind. A template item is
    ticked by its phase's flow: `manual` is for the items playbooks add.
    Raises UsageError for an unknown phase.
    """
    lang: TitleLanguage = "en" if language == "en" else "fr"
    return [
        {
            "id": spec.id,
            "title": getattr(spec.title, lang),
            "clause": spec.clause,
            "owner": spec.owner,
            "evidence_kind": spec.evidence_kind,
        }
        for spec in _template_specs(phase)
    ]


def _gloss_free(title: str) -> str:
    """A title without a trailing parenthesis: how the titles before languages read in English."""
    return re.sub(r"\s*\([^()]*\)$", "", title.strip())


def item_title(phase: str, item_id: str, title: str, language: str) -> str:
    """A stored item's title as a person reading `language` should see it.

    Checklists opened before titles came per language hold the template's
    English title with a French gloss (`Hardware and software inventory per
    host (inventaire matériel et logiciel)`): those, and a template title in
    the other language, are shown in `language`. Any other title (a playbook's
    own item or rewording) is shown as written. Unknown phases are shown as written.
    """
    try:
        specs = _template_specs(phase)
    except UsageError:
        return title
    spec = next((s for s in specs if s.id == item_id), None)
    if spec is None:
        return title
    wanted: str = getattr(spec.title, "en" if language == "en" else "fr")
    if title == wanted:
        return title
    known = {spec.title.fr, spec.title.en}
    if title in known or _gloss_free(title) == _gloss_free(spec.title.en):
        return wanted
    return title


class Waiver(PlaybookModel):
    """A template item the contract does not need, and why."""

    id: str
    reason: NonEmpty


class Reword(PlaybookModel):
    """A new title for a template item."""

    id: str
    title: NonEmpty


class PhaseOverrides(PlaybookModel):
    """Changes to the default checklist of one phase."""

    add: list[ChecklistItemSpec] = Field(default_factory=list)
    waive: list[Waiver] = Field(default_factory=list)
    reword: list[Reword] = Field(default_factory=list)

    def apply(self, template: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Copies of the template's items with these overrides applied.

        Added items come after the template ones. Reworded items get their new
        title. Waived items stay in the list with `waived_reason` set; every item
        has the key (None when not waived).
        """
        items = [dict(item) for item in template] + [item.model_dump() for item in self.add]
        by_id = {item["id"]: item for item in items}
        for item in items:
            item["waived_reason"] = None
        for reword in self.reword:
            by_id[reword.id]["title"] = reword.title
        for waiver in self.waive:
            by_id[waiver.id]["waived_reason"] = waiver.reason
        return items

    def problems(self, template_ids: list[str]) -> list[tuple[Loc, str]]:
        """Added ids that the template already has, changes to ids that exist nowhere."""
        problems: list[tuple[Loc, str]] = []
        for i, item in enumerate(self.add):
            if item.id in template_ids:
                problems.append(
                    (("add", i, "id"), f"item {item.id!r} already exists in the template")
                )
        known = list(dict.fromkeys(template_ids + [item.id for item in self.add]))
        changed = {"waive": [c.id for c in self.waive], "reword": [c.id for c in self.reword]}
        for key, ids in changed.items():
            for i, item_id in enumerate(ids):
                if item_id not in known:
                    problems.append(
                        ((key, i, "id"), f"unknown item {item_id!r} (items: {', '.join(known)})")
                    )
        return problems


class Phases(PlaybookModel):
    """Checklist overrides per phase, on top of the templates."""

    takeover: PhaseOverrides = Field(default_factory=PhaseOverrides)
    implementation: PhaseOverrides = Field(default_factory=PhaseOverrides)
    operational: PhaseOverrides = Field(default_factory=PhaseOverrides)
    reversibility: PhaseOverrides = Field(default_factory=PhaseOverrides)

    @model_validator(mode="after")
    def _known_ids(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        for phase in PHASES:
            template_ids = [item["id"] for item in load_phase_template(phase)]
            for loc, message in self.of(phase).problems(template_ids):
                problems.append(((phase, *loc), message))
        if problems:
            raise LocatedProblems(problems)
        return self

    def of(self, phase: str) -> PhaseOverrides:
        """The overrides of `phase`; UsageError for an unknown phase."""
        overrides: PhaseOverrides = getattr(self, parse_phase(phase))
        return overrides
