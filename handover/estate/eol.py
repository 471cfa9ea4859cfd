"""End-of-life flags: which OS release and which packages of an inventory are past support.

The knowledge itself is dated data, not code: `eol.yaml` (shipped beside this
module) holds each table with its source and the day it was last reviewed
(`as_of`), so updating a date is a data change a reviewer can check against
the source. This module loads it once and matches an inventory against it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import date
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict

from handover.estate.inventory import Package

__all__ = ["EolTable", "eol_flags", "eol_table"]

_MAX_NAMES_PER_FLAG = 5


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OsEol(_Model):
    """One distribution: end of (LTS) support per release (major, or major.minor)."""

    id: str  # os-release ID
    label: str
    source: str
    releases: dict[str, date]


class PackageRule(_Model):
    """A package name pattern, and optionally a version pattern, as the manager lists them."""

    name: re.Pattern[str]
    version: re.Pattern[str] | None = None

    def matches(self, package: Package) -> bool:
        return bool(self.name.search(package.name)) and (
            self.version is None or bool(self.version.search(package.version))
        )


class PackageEol(_Model):
    """A product past support, the rules that recognise its packages, and its end date."""

    product: str
    end_of_life: date | None = None
    source: str
    rules: list[PackageRule]

    @property
    def label(self) -> str:
        when = f" {self.end_of_life.isoformat()}" if self.end_of_life else ""
        return f"{self.product} (end of life{when})"


class EolTable(_Model):
    """The whole of `eol.yaml`."""

    as_of: date
    os: list[OsEol]
    packages: list[PackageEol]


@functools.cache
def eol_table() -> EolTable:
    """The table shipped with handover (read and validated on first use)."""
    text = resources.files("handover.estate").joinpath("eol.yaml").read_text(encoding="utf-8")
    return EolTable.model_validate(yaml.safe_load(text))


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text))


def _os_flag(table: OsEol, os_release: dict[str, str], today: date) -> str | None:
    """The flag of a release of `table`'s distribution: past its date, or older than the table."""
    version_id = os_release["VERSION_ID"]
    depth = len(next(iter(table.releases)).split("."))
    version = ".".join(version_id.split(".")[:depth])
    end = table.releases.get(version)
    oldest = min(table.releases, key=_version_key)
    name = os_release.get("PRETTY_NAME") or f"{table.label} {version_id}"
    if end is not None and end <= today:
        return f"os: {name}: end of life since {end.isoformat()}"
    if end is None and _version_key(version) < _version_key(oldest):
        return f"os: {name}: end of life (older than {table.label} {oldest})"
    return None


def _os_eol_flag(os_release: dict[str, str], today: date) -> str | None:
    distro = os_release.get("ID", "").lower()
    if not os_release.get("VERSION_ID", ""):
        return None
    for table in eol_table().os:
        if table.id == distro:
            flag = _os_flag(table, os_release, today)
            if flag:
                return flag
    return None


def _package_hits(packages: Sequence[Package]) -> dict[str, list[str]]:
    """`name version` of each package past support, by product label (first rule wins)."""
    rules = [(product.label, rule) for product in eol_table().packages for rule in product.rules]
    hits: dict[str, list[str]] = {}
    for package in packages:
        for label, rule in rules:
            if rule.matches(package):
                hits.setdefault(label, []).append(f"{package.name} {package.version}")
                break
    return hits


def eol_flags(os_release: dict[str, str], packages: Sequence[Package], today: date) -> list[str]:
    """End-of-life findings: the OS release, then one line per family of EOL packages."""
    flags: list[str] = []
    os_flag = _os_eol_flag(os_release, today)
    if os_flag:
        flags.append(os_flag)
    for label, names in _package_hits(packages).items():
        shown = ", ".join(names[:_MAX_NAMES_PER_FLAG])
        more = len(names) - _MAX_NAMES_PER_FLAG
        flags.append(f"package: {label}: {shown}" + (f" (+{more} more)" if more > 0 else ""))
    return flags
