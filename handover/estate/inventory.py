"""The inventory of one host: OS, packages, services, ports, disks, users, cron, certificates.

Takeover needs a faithful picture of every host ("état des lieux") and
reversibility a final one. These models are that picture, as reports, health
checks and the flows read it; how the facts are collected
(`inventory_collect`), parsed (`inventory_parser`) and judged for end of life
(`eol`) lives beside them.

Facts that could not be read land in `Inventory.unreadable` as "fact: why",
so a report shows a gap as a gap instead of an empty list that looks clean.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

__all__ = [
    "Certificate",
    "CronEntry",
    "Disk",
    "Inventory",
    "ListeningPort",
    "Package",
    "Service",
    "User",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Package(_Model):
    """An installed package, as the package manager names it."""

    name: str
    version: str


class Service(_Model):
    """A service and its state as the service manager reports it (running, exited, dead...)."""

    name: str
    state: str


class ListeningPort(_Model):
    """A listening TCP socket or bound UDP socket; `process` only when the account may see it."""

    proto: str  # tcp | udp
    address: str
    port: int
    process: str | None = None


class Disk(_Model):
    """One mounted filesystem and its usage in bytes."""

    mount: str
    fstype: str
    size_bytes: int
    used_bytes: int
    avail_bytes: int
    used_percent: float


class User(_Model):
    """One account of /etc/passwd (human and system accounts alike)."""

    name: str
    uid: int
    gid: int
    home: str
    shell: str

    @property
    def is_human(self) -> bool:
        """True for accounts people log into: uid ≥ 1000 (or root) with a real shell."""
        login = not self.shell.endswith(("nologin", "/false", "/sync", "/shutdown", "/halt"))
        return login and (self.uid == 0 or 1000 <= self.uid < 65534)


class CronEntry(_Model):
    """One active line of a crontab (comments and blank lines dropped)."""

    source: str
    line: str


class Certificate(_Model):
    """An X.509 certificate found under a configured path."""

    path: str
    subject: str
    issuer: str
    not_after: datetime
    days_left: int
    sha256: str = ""


class Inventory(_Model):
    """Everything collected from one host in one run."""

    host: str
    collected_at: datetime
    os_release: dict[str, str] = {}
    kernel: str = ""
    arch: str = ""
    hostname: str = ""
    package_manager: str | None = None
    packages: list[Package] = []
    services: list[Service] = []
    listening: list[ListeningPort] = []
    disks: list[Disk] = []
    users: list[User] = []
    cron: list[CronEntry] = []
    certificates: list[Certificate] = []
    eol_flags: list[str] = []
    unreadable: list[str] = []

    @property
    def os_name(self) -> str:
        """`PRETTY_NAME` of os-release, or what can be made of it."""
        rel = self.os_release
        return rel.get("PRETTY_NAME") or " ".join(
            x for x in (rel.get("NAME", ""), rel.get("VERSION", "")) if x
        )
