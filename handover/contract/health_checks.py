"""The `services.health_checks` list: what the health flow samples, and how often.

Availability in an SLA is about services answering (a web site, a database),
not only hosts: each check names the service it counts for, and the kind of
probe that tells whether it answers. Without any check, every host of the
perimeter gets a `reachable` check (the old behaviour), so a playbook never
measures nothing silently.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, field_validator, model_validator

from handover.contract.base import Loc, LocatedProblems, PlaybookModel
from handover.contract.fields import SecretRef, Slug
from handover.contract.literal_secrets import command_secret_kind

__all__ = ["DEFAULT_INTERVAL_MINUTES", "CheckKind", "HealthCheckSpec", "HealthChecks"]

DEFAULT_INTERVAL_MINUTES = 5
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_RESERVED = frozenset({"PATH", "IFS", "ENV", "BASH_ENV", "SHELL", "HOME", "PS4"})

CheckKind = Literal["reachable", "tcp", "http", "systemd", "disk", "cert", "postgres"]

#: Fields each kind needs (besides `host`, which every kind but `http` needs).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "reachable": (),
    "tcp": ("port",),
    "http": ("url",),
    "systemd": ("unit",),
    "disk": ("mount",),
    "cert": ("path",),
    "postgres": (),
}


class HealthCheckSpec(PlaybookModel):
    """One probe of a service, taken every `interval_minutes` by the health flow."""

    name: Slug = Field(description="Check name (slug), unique in the playbook.")
    kind: CheckKind = Field(
        description="reachable (SSH session opens), tcp (port accepts), http (status and "
        "latency), systemd (unit active), disk (use under threshold), cert (not expiring), "
        "postgres (psql -tAc 'SELECT 1' run on the host answers 1)."
    )
    service: Slug | None = Field(
        default=None, description="Service the check counts for (default: the check's name)."
    )
    host: Slug | None = Field(
        default=None, description="Host of the perimeter the check runs on (all kinds but http)."
    )
    interval_minutes: int = Field(default=DEFAULT_INTERVAL_MINUTES, ge=1, le=1440)
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    port: int | None = Field(default=None, ge=1, le=65535, description="tcp: port on the host.")
    url: str | None = Field(
        default=None, description="http: URL fetched from the worker (http:// or https://)."
    )
    expect_status: list[int] = Field(
        default_factory=list, description="http: statuses that pass (default: 200-399)."
    )
    max_latency_ms: int | None = Field(
        default=None, gt=0, description="http: slower answers fail (default: no limit)."
    )
    unit: str | None = Field(default=None, description="systemd: unit name, e.g. nginx.service.")
    mount: str | None = Field(default=None, description="disk: mount point, e.g. /var.")
    threshold_percent: int | None = Field(
        default=None, ge=1, le=100, description="disk: default sla.disk_threshold_percent."
    )
    path: str | None = Field(default=None, description="cert: PEM certificate file on the host.")
    warning_days: int | None = Field(
        default=None, ge=0, description="cert: default sla.cert_warning_days."
    )
    database: str | None = Field(default=None, description="postgres: database name (psql -d).")
    db_user: str | None = Field(default=None, description="postgres: role (psql -U).")
    env: dict[str, SecretRef] = Field(
        default_factory=dict,
        max_length=8,
        description="postgres: environment of psql, e.g. {PGPASSWORD: vault:acme/db}; sent "
        "through stdin like a dump's env, never on a command line.",
    )

    @property
    def service_name(self) -> str:
        return self.service or self.name

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        if value is not None and command_secret_kind(value):
            raise ValueError("holds a secret: health checks take no credential in a URL")
        return value

    @field_validator("unit", "mount", "path", "database", "db_user")
    @classmethod
    def _plain_word(cls, value: str | None) -> str | None:
        # These reach a remote shell command: quoted there, but kept to printable, plain text.
        if value is not None and (not value.isprintable() or "\n" in value or not value.strip()):
            raise ValueError("must be printable text on one line")
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [n for n in value if not _ENV_NAME.match(n) or n in _RESERVED or n.startswith("LD_")]
        if bad:
            raise LocatedProblems([((n,), "not an allowed variable name") for n in bad])
        return value

    @model_validator(mode="after")
    def _kind_fields(self) -> Self:
        problems: list[tuple[Loc, str]] = [
            ((f,), f"required for a {self.kind} check")
            for f in _REQUIRED[self.kind]
            if getattr(self, f) is None
        ]
        if self.kind != "http" and self.host is None:
            problems.append((("host",), f"required for a {self.kind} check"))
        if self.env and self.kind != "postgres":
            problems.append((("env",), "only a postgres check takes an environment"))
        if problems:
            raise LocatedProblems(problems)
        return self


def _unique_names(checks: list[HealthCheckSpec]) -> list[HealthCheckSpec]:
    """Samples are stored under the check's name: two checks with one name would mix."""
    seen: dict[str, int] = {}
    problems: list[tuple[Loc, str]] = []
    for i, check in enumerate(checks):
        if check.name in seen:
            problems.append(
                ((i, "name"), f"duplicate check name {check.name!r} (see [{seen[check.name]}])")
            )
        seen.setdefault(check.name, i)
    if problems:
        raise LocatedProblems(problems)
    return checks


#: The `services.health_checks` list: names unique.
HealthChecks = Annotated[list[HealthCheckSpec], AfterValidator(_unique_names)]
