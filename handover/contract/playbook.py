"""The playbook: one YAML file per managed-IT-services contract, as one pydantic model.

A playbook states what the contract states: parties, perimeter (hosts,
datasets, software), services, SLA, security, reversibility, backups and the
checklist overrides of each phase. Flows read it; nothing else drives them.
Each section has its own module; this one holds the root model, the checks
that cross sections (names that refer to hosts), and what flows ask of a
playbook as a whole.

Every model forbids unknown keys, so a typo is an error rather than a
silently ignored setting. Secrets never appear in a playbook, only references
(`env:`, `file:`, `prefect-secret:`, `vault:`). Reading a file is
`handover.contract.loader.load_playbook`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from handover.contract.backups import Backups
from handover.contract.base import Loc, LocatedProblems, PlaybookModel
from handover.contract.checklists import Phases, load_phase_template
from handover.contract.documentation import Documentation
from handover.contract.operations import Operations
from handover.contract.parties import Contract
from handover.contract.perimeter import Dataset, Host, Perimeter
from handover.contract.reversibility import Reversibility
from handover.contract.security import Security
from handover.contract.services import Services, Sla
from handover.errors import UsageError
from handover.state.layout import ContractPaths


def _duplicate(section: str, what: str, index: int, name: str, first: int) -> tuple[Loc, str]:
    return (
        ("perimeter", section, index, "name"),
        f"duplicate {what} name {name!r} (also perimeter.{section}[{first}])",
    )


def _reference_problems(
    hosts: Sequence[str | None],
    datasets: Sequence[tuple[str | None, str | None]],
    access_hosts: Sequence[str | None],
) -> list[tuple[Loc, str]]:
    """Duplicate names and references to unknown hosts, located from the top of the playbook.

    Works on plain names so that the loader can run it on the raw YAML too
    (`raw_reference_problems`), and report these problems alongside type
    errors elsewhere.
    """
    problems: list[tuple[Loc, str]] = []
    host_index: dict[str, int] = {}
    for i, name in enumerate(hosts):
        if name is not None and name in host_index:
            problems.append(_duplicate("hosts", "host", i, name, host_index[name]))
        elif name is not None:
            host_index[name] = i
    known = ", ".join(host_index) or "none"
    dataset_index: dict[str, int] = {}
    for i, (name, host) in enumerate(datasets):
        if name is not None and name in dataset_index:
            problems.append(_duplicate("datasets", "dataset", i, name, dataset_index[name]))
        elif name is not None:
            dataset_index[name] = i
        if host is not None and host not in host_index:
            problems.append(
                (("perimeter", "datasets", i, "host"), f"unknown host {host!r} (hosts: {known})")
            )
    for i, host in enumerate(access_hosts):
        if host is not None and host not in host_index:
            problems.append(
                (
                    ("security", "provider_access", i, "host"),
                    f"unknown host {host!r} (hosts: {known})",
                )
            )
    return problems


def raw_reference_problems(data: dict[str, Any]) -> list[tuple[Loc, str]]:
    """The cross-reference problems of raw YAML data (entries that are not mappings are skipped).

    `Playbook` checks references only once every field is valid; the loader
    runs this on the raw data as well, so that all problems show at once.
    """

    def items(section: Any, key: str) -> list[Any]:
        value = section.get(key) if isinstance(section, dict) else None
        return value if isinstance(value, list) else []

    def text(entry: Any, key: str) -> str | None:
        value = entry.get(key) if isinstance(entry, dict) else None
        return value if isinstance(value, str) else None

    perimeter = data.get("perimeter")
    return _reference_problems(
        [text(h, "name") for h in items(perimeter, "hosts")],
        [(text(d, "name"), text(d, "host")) for d in items(perimeter, "datasets")],
        [text(a, "host") for a in items(data.get("security"), "provider_access")],
    )


class Playbook(PlaybookModel):
    """A contract playbook: everything the phase flows need to know about one contract."""

    model_config = ConfigDict(title="handover playbook")

    contract: Contract
    perimeter: Perimeter
    services: Services = Field(default_factory=Services)
    sla: Sla = Field(default_factory=Sla)
    security: Security = Field(default_factory=Security)
    reversibility: Reversibility
    backups: Backups | None = None
    operations: Operations = Field(default_factory=Operations)
    documentation: Documentation = Field(default_factory=Documentation)
    phases: Phases = Field(default_factory=Phases)

    _source: Path | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _references(self) -> Self:
        problems = _reference_problems(
            [h.name for h in self.perimeter.hosts],
            [(d.name, d.host) for d in self.perimeter.datasets],
            [a.host for a in self.security.provider_access],
        )
        if problems:
            raise LocatedProblems(problems)
        return self

    @property
    def contract_id(self) -> str:
        """The contract id (slug)."""
        return self.contract.id

    @property
    def hosts(self) -> list[Host]:
        """The hosts of the perimeter."""
        return self.perimeter.hosts

    @property
    def datasets(self) -> list[Dataset]:
        """The datasets of the perimeter."""
        return self.perimeter.datasets

    @property
    def source(self) -> Path | None:
        """The file this playbook was loaded from, if any."""
        return self._source

    def host(self, name: str) -> Host:
        """Return the host called `name`; raise UsageError listing the known hosts."""
        for host in self.perimeter.hosts:
            if host.name == name:
                return host
        names = ", ".join(h.name for h in self.perimeter.hosts) or "none"
        raise UsageError(
            f"{self._source or self.contract_id}: unknown host {name!r} (hosts: {names})"
        )

    def require_backups(self) -> Backups:
        """The backups section, for the code that backs up; UsageError when there is none."""
        if self.backups is None:
            raise UsageError(f"{self.contract_id}: the playbook has no backups section")
        return self.backups

    def known_hosts_file(self) -> Path:
        """The SSH host keys the contract trusts: `perimeter.known_hosts`, else its own file.

        A relative `perimeter.known_hosts` is taken under the working directory
        (`~` expanded), as the playbook's recipients files are. Connecting to
        the hosts, pinning their keys at first contact and the login check of
        the revocation all use this one file.
        """
        configured = self.perimeter.known_hosts
        if not configured:
            return ContractPaths(self.contract_id).known_hosts
        path = Path(configured).expanduser()
        return path if path.is_absolute() else Path.cwd() / path

    def datasets_of(self, host_name: str) -> list[Dataset]:
        """The datasets read from host `host_name` (never the S3 ones)."""
        return [d for d in self.perimeter.datasets if d.host == host_name]

    def secret_refs(self) -> list[tuple[str, str]]:
        """Every credential reference, as (field path, reference), e.g. for a preflight check."""
        refs: list[tuple[str, str]] = []
        for i, host in enumerate(self.perimeter.hosts):
            if host.credential:
                refs.append((f"perimeter.hosts[{i}].credential", host.credential))
        for i, dataset in enumerate(self.perimeter.datasets):
            for name, ref in (dataset.dump.env if dataset.dump else {}).items():
                refs.append((f"perimeter.datasets[{i}].dump.env.{name}", ref))
        for i, check in enumerate(self.services.health_checks):
            for name, ref in check.env.items():
                refs.append((f"services.health_checks[{i}].env.{name}", ref))
        s3 = self.perimeter.s3
        if s3 is not None:
            for key in ("access_key_id", "secret_access_key"):
                value = getattr(s3, key)
                if value:
                    refs.append((f"perimeter.s3.{key}", value))
        for i, access in enumerate(self.security.provider_access):
            if access.verify_key:
                refs.append((f"security.provider_access[{i}].verify_key", access.verify_key))
        refs.append(("reversibility.signing_key", self.reversibility.signing_key))
        if self.backups is not None and self.backups.identity:
            refs.append(("backups.identity", self.backups.identity))
        return refs


def playbook_json_schema() -> dict[str, Any]:
    """The JSON Schema of a playbook, for editor completion (yaml-language-server)."""
    schema = Playbook.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def phase_items(playbook: Playbook, phase: str) -> list[dict[str, Any]]:
    """The checklist items of `phase` for this contract: template plus the playbook's overrides.

    See `PhaseOverrides.apply`: added items last, reworded titles, waived items
    kept with `waived_reason` set (None on every other item).
    """
    return playbook.phases.of(phase).apply(load_phase_template(phase, playbook.contract.language))
