"""Contract playbooks: one YAML file per managed-IT-services contract.

A playbook states what the contract states: parties, perimeter (hosts,
datasets, software), services, SLA, security, reversibility, backups and the
checklist overrides of each phase. Flows read it; nothing else drives them.

Every model forbids unknown keys, so a typo is an error rather than a
silently ignored setting. Secrets never appear in a playbook, only references
(`env:`, `file:`, `prefect-secret:`, `vault:`); a value that looks like a
literal secret is refused without being echoed.

`load_playbook(path)` raises `PlaybookError` with one line per problem, each
of the form `playbooks/x.yaml:42: perimeter.datasets[1].host: unknown host
'db9' (hosts: web01, db01)`. Line numbers come from the YAML node tree.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import re
import struct
from collections.abc import Iterator, Sequence
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from handover.contract.phases import PHASES, parse_phase
from handover.errors import KeyFormatError, PlaybookError, UsageError
from handover.secrets.references import SCHEMES, is_ref

__all__ = [
    "PHASES",
    "AccessRule",
    "Backups",
    "Billing",
    "ChecklistItemSpec",
    "Contact",
    "Contract",
    "ContractDates",
    "DataFormat",
    "Dataset",
    "Deadlines",
    "Delivery",
    "DumpSpec",
    "EscalationStep",
    "Exemption",
    "Host",
    "Hotline",
    "Maintenance",
    "Onsite",
    "Ownership",
    "Parties",
    "Party",
    "Perimeter",
    "PhaseOverrides",
    "Phases",
    "Playbook",
    "ProviderAccess",
    "Reversibility",
    "Reword",
    "S3DatasetSpec",
    "S3Settings",
    "Security",
    "Services",
    "Severity",
    "Sla",
    "Software",
    "Waiver",
    "literal_secret_kind",
    "load_phase_template",
    "load_playbook",
    "load_recipients",
    "phase_items",
    "playbook_json_schema",
    "recipient_problem",
    "validate_playbook_text",
]


SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_SHA256_FP_RE = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}=?$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ACCOUNT_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_AGE_RECIPIENT_RE = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")

# Values that are private keys or tokens, wherever they appear in a playbook.
_LITERAL_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"), "a PEM private key"),
    (re.compile(r"AGE-SECRET-KEY-1", re.IGNORECASE), "an age secret key"),
    (re.compile(r"PuTTY-User-Key-File-"), "a PuTTY private key"),
    (re.compile(r"(?<![A-Za-z0-9/+=])AKIA[0-9A-Z]{16}(?![A-Za-z0-9])"), "an AWS access key id"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"), "a GitHub token"),
    (re.compile(r"\bxox[abpr]-[A-Za-z0-9-]{10,}"), "a Slack token"),
)

_SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
Loc = tuple[str | int, ...]
# libyaml when present: composing is most of the time spent on a playbook.
_FastLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_REF_HELP = ", ".join(f"{s}:..." for s in SCHEMES)


# --------------------------------------------------------------------------- field checks


def literal_secret_kind(value: str) -> str | None:
    """Name the kind of secret `value` looks like (e.g. 'a PEM private key'), or None."""
    for pattern, kind in _LITERAL_SECRETS:
        if pattern.search(value):
            return kind
    return None


def _check_slug(value: str) -> str:
    if not SLUG_RE.match(value):
        raise ValueError(
            f"bad slug {value[:70]!r}: use 1 to 63 characters among a-z, 0-9 and '-', "
            "starting with a letter or digit"
        )
    return value


def _check_ref(value: str) -> str:
    if not is_ref(value):
        if literal_secret_kind(value):
            raise ValueError(f"holds a literal secret; store it and give a reference ({_REF_HELP})")
        raise ValueError(
            f"must be a credential reference ({_REF_HELP}), not a literal value; "
            "store the secret in the vault, a file or the environment"
        )
    return value


def _check_fingerprint(value: str) -> str:
    if not _SHA256_FP_RE.match(value):
        raise ValueError(
            f"bad host key fingerprint {value[:80]!r}: expected 'SHA256:' followed by 43 "
            "base64 characters, as printed by `ssh-keygen -lf` or `ssh-keyscan | ssh-keygen -lf -`"
        )
    return value


def _check_email(value: str) -> str:
    if not _EMAIL_RE.match(value):
        raise ValueError(f"bad e-mail address {value[:80]!r}")
    return value


def _check_abs_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"path {value[:120]!r} must be absolute (start with '/')")
    return value


def _ssh_public_key_problem(line: str) -> str | None:
    """Return why `line` is not an OpenSSH public key line, or None when it is one."""
    parts = line.strip().split(None, 2)
    if len(parts) < 2:
        return "expected '<type> <base64> [comment]', as in a .pub file"
    key_type, blob_b64 = parts[0], parts[1]
    if key_type not in _SSH_KEY_TYPES:
        return f"unknown key type {key_type[:40]!r} (expected one of {', '.join(_SSH_KEY_TYPES)})"
    try:
        blob = base64.b64decode(blob_b64, validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        inner_type = blob[4 : 4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError, ValueError):
        return "the key data is not valid base64 of an SSH public key"
    if inner_type != key_type:
        return f"the key data is a {inner_type[:40]!r} key, not {key_type!r}"
    if key_type == "ssh-ed25519" and len(blob) != 4 + 11 + 4 + 32:
        return "the ssh-ed25519 key data has the wrong length (truncated?)"
    return None


def _check_public_key(value: str) -> str:
    if literal_secret_kind(value):
        raise ValueError("holds a private key: give the public key (the .pub file) instead")
    problem = _ssh_public_key_problem(value)
    if problem:
        raise ValueError(f"not an OpenSSH public key: {problem}")
    return value


def _fallback_recipient_problem(text: str) -> str | None:
    """Strict shape check used until handover.bundle.age.parse_recipient exists."""
    if text.startswith("age1"):
        return None if _AGE_RECIPIENT_RE.match(text) else "malformed age X25519 recipient"
    if text.startswith(("ssh-ed25519 ", "ssh-rsa ")):
        return _ssh_public_key_problem(text)
    return "expected an age recipient ('age1...'), an ssh-ed25519 or ssh-rsa public key"


def recipient_problem(text: str) -> str | None:
    """Return why `text` is not a usable age recipient, or None when it parses.

    Uses `handover.bundle.age.parse_recipient` (the same parser that encrypts),
    falling back to a strict shape check while that module is absent.
    """
    if literal_secret_kind(text):
        return "holds a secret key: give the recipient (public key) instead"
    try:
        from handover.bundle.age import parse_recipient
    except ImportError:
        return _fallback_recipient_problem(text)
    try:
        parse_recipient(text)
    except KeyFormatError as exc:
        return str(exc)
    return None


def _check_recipient_entry(value: str) -> str:
    if value.startswith("file:"):
        if not value[5:].strip():
            raise ValueError("'file:' must be followed by the path of an age recipients file")
        return value
    problem = recipient_problem(value.strip())
    if problem:
        raise ValueError(f"bad recipient: {problem}")
    return value


Slug = Annotated[str, AfterValidator(_check_slug)]
SecretRef = Annotated[
    str,
    AfterValidator(_check_ref),
    Field(
        description="Credential reference: env:NAME, file:PATH, prefect-secret:BLOCK "
        "or vault:CONTRACT/ENTRY."
    ),
]
Fingerprint = Annotated[str, AfterValidator(_check_fingerprint)]
Email = Annotated[str, AfterValidator(_check_email)]
AbsPath = Annotated[str, AfterValidator(_check_abs_path)]
PublicKey = Annotated[str, AfterValidator(_check_public_key)]
RecipientEntry = Annotated[
    str,
    AfterValidator(_check_recipient_entry),
    Field(
        description="age recipient (age1...), ssh-ed25519/ssh-rsa public key, "
        "or file:PATH of an age -R recipients file."
    ),
]
Owner = Literal["provider", "client"]
EvidenceKind = Literal[
    "document", "report", "bundle", "inventory", "snapshot", "human", "log", "certificate"
]
NonEmpty = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    """Base of every playbook model: unknown keys are errors; error strings never show values."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class _Problems(ValueError):
    """Several cross-field problems at once, each with a location relative to the model."""

    def __init__(self, items: list[tuple[Loc, str]]) -> None:
        self.items = items
        super().__init__("; ".join(f"{_format_loc(loc)}: {msg}" for loc, msg in items))


# --------------------------------------------------------------------------- contract


class Contact(_Model):
    """A person to reach at one of the parties."""

    name: NonEmpty = Field(description="Full name.")
    role: str | None = Field(default=None, description="Role, e.g. 'DSI', 'Responsable de compte'.")
    email: Email | None = Field(default=None, description="E-mail address.")
    phone: str | None = Field(
        default=None, description="Phone number, international format preferred."
    )


class EscalationStep(_Model):
    """One level of the escalation path (niveau d'escalade), level 1 first."""

    level: int = Field(ge=1, description="Escalation level, 1 = first contact.")
    name: NonEmpty = Field(description="Person or team reached at this level.")
    email: Email | None = None
    phone: str | None = None
    after_minutes: int | None = Field(
        default=None,
        ge=0,
        description="Escalate to this level when unresolved after this many minutes.",
    )


class Party(_Model):
    """The provider (prestataire) or the client, as named in the contract."""

    legal_name: NonEmpty = Field(description="Legal name (raison sociale).")
    registration: str | None = Field(
        default=None, description="Company registration, e.g. 'SIREN 552 100 554'."
    )
    address: str | None = Field(default=None, description="Registered address.")
    contacts: list[Contact] = Field(default_factory=list, description="People to reach.")
    escalation: list[EscalationStep] = Field(
        default_factory=list, description="Escalation path, level 1 first."
    )

    @field_validator("escalation")
    @classmethod
    def _levels_unique(cls, steps: list[EscalationStep]) -> list[EscalationStep]:
        levels = [s.level for s in steps]
        if len(set(levels)) != len(levels):
            raise ValueError(f"escalation levels must be unique (got {levels})")
        return steps


class Parties(_Model):
    """The two parties of the contract."""

    provider: Party = Field(description="The managed-services provider (prestataire).")
    client: Party = Field(description="The client whose systems are managed.")


class ContractDates(_Model):
    """Dates and term of the contract."""

    signed: date = Field(description="Signature date (YYYY-MM-DD).")
    effective: date = Field(description="Date the services start (YYYY-MM-DD).")
    initial_term_months: int = Field(default=12, ge=1, description="Initial term in months.")
    renewal: Literal["tacit", "explicit", "none"] = Field(
        default="tacit", description="Renewal: tacit (tacite reconduction), explicit, or none."
    )
    notice_period_months: int = Field(
        default=3, ge=0, description="Termination notice (préavis de résiliation) in months."
    )

    @model_validator(mode="after")
    def _effective_after_signed(self) -> Self:
        if self.effective < self.signed:
            raise ValueError(f"effective date {self.effective} is before signature {self.signed}")
        return self


class Billing(_Model):
    """Billing model; informational only."""

    model: Literal["forfait", "per_ticket", "per_task"] = Field(
        description="forfait (flat fee), per_ticket or per_task."
    )
    notes: str | None = None


class Contract(_Model):
    """Who, when, how billed: the header of the contract."""

    id: Slug = Field(description="Contract id (slug), used in file and artifact names.")
    title: NonEmpty = Field(description='Human title, e.g. "Infogérance du SI d\'ACME".')
    parties: Parties
    dates: ContractDates
    billing: Billing | None = None


# --------------------------------------------------------------------------- perimeter


class Host(_Model):
    """A machine in the perimeter, reached over SSH or run on locally by the worker."""

    name: Slug = Field(description="Host name (slug), unique in the playbook.")
    transport: Literal["ssh", "local"] = Field(
        description="ssh: reached over SSH; local: the worker runs on this host."
    )
    address: str | None = Field(default=None, description="ssh: DNS name or IP address (required).")
    port: int = Field(default=22, ge=1, le=65535, description="ssh: TCP port.")
    user: str | None = Field(default=None, description="ssh: login account.")
    host_key: Fingerprint | None = Field(
        default=None,
        description="Pinned host key fingerprint 'SHA256:...'; else the contract known_hosts.",
    )
    credential: SecretRef | None = Field(
        default=None, description="Reference to the SSH private key or password of `user`."
    )
    auth: Literal["key", "password"] = Field(default="key", description="What `credential` holds.")
    use_agent: bool = Field(
        default=False, description="Look keys up in the SSH agent and ~/.ssh (off unless asked)."
    )
    root: str | None = Field(
        default=None, description="local: folder that stands for '/' of this host (default '/')."
    )
    cert_paths: list[AbsPath] = Field(
        default_factory=list, description="Folders searched for TLS certificates (inventory)."
    )
    tags: list[str] = Field(default_factory=list, description="Free tags, e.g. web, db.")

    @model_validator(mode="after")
    def _transport_fields(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if self.transport == "ssh":
            if not self.address:
                problems.append((("address",), "required for an ssh host"))
            if self.root is not None:
                problems.append((("root",), "applies only to local hosts"))
        elif self.root is None:
            self.root = "/"
        if problems:
            raise _Problems(problems)
        return self


class S3Settings(_Model):
    """Per-contract S3 settings; unset fields keep boto3's defaults; credentials as references."""

    endpoint_url: str | None = Field(
        default=None, description="Custom endpoint (MinIO, OVH, Scaleway...)."
    )
    region: str | None = None
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    checksum_when_required: bool = Field(
        default=False,
        description="Send checksums only when required (S3 servers that reject CRC32 trailers).",
    )
    profile: str | None = Field(default=None, description="AWS profile name from ~/.aws/config.")
    access_key_id: SecretRef | None = None
    secret_access_key: SecretRef | None = None
    aws_credentials_block: str | None = Field(
        default=None, description="Name of a prefect-aws AwsCredentials block."
    )

    @model_validator(mode="after")
    def _keys_in_pairs(self) -> Self:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            missing = "secret_access_key" if self.secret_access_key is None else "access_key_id"
            raise _Problems([((missing,), "access_key_id and secret_access_key go together")])
        return self


class DumpSpec(_Model):
    """A database dump: a command run on the host whose stdout is the dump file."""

    command: NonEmpty = Field(
        description="Command writing the dump to stdout, e.g. 'pg_dump -Fc acme'."
    )
    filename: NonEmpty = Field(description="Name of the dump file inside the volume.")

    @field_validator("filename")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if "/" in value or value in (".", ".."):
            raise ValueError(f"filename {value[:80]!r} must be a plain file name, without '/'")
        return value


class S3DatasetSpec(_Model):
    """Objects under an S3 prefix."""

    bucket: str = Field(description="Bucket name.")
    prefix: str = Field(
        default="", description="Key prefix, e.g. 'shared/'; empty for the whole bucket."
    )
    versions: Literal["latest", "all"] = Field(
        default="latest", description="latest: current objects; all: every object version."
    )

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        if not _BUCKET_RE.match(value):
            raise ValueError(f"bad bucket name {value[:80]!r}: 3-63 characters a-z 0-9 . -")
        return value


class Dataset(_Model):
    """Data to snapshot, back up and return: exactly one of paths, dump or s3."""

    name: Slug = Field(description="Dataset name (slug), unique in the playbook.")
    host: str | None = Field(
        default=None, description="Host name; required except for s3 datasets."
    )
    paths: list[AbsPath] | None = Field(
        default=None, description="Absolute paths of trees on the host."
    )
    dump: DumpSpec | None = None
    s3: S3DatasetSpec | None = None

    @property
    def kind(self) -> Literal["paths", "dump", "s3"]:
        """Which of the three sources this dataset uses."""
        if self.s3 is not None:
            return "s3"
        return "dump" if self.dump is not None else "paths"

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [k for k in ("paths", "dump", "s3") if getattr(self, k) is not None]
        if len(given) != 1:
            what = ", ".join(given) if given else "none"
            raise ValueError(f"give exactly one of paths, dump or s3 (got {what})")
        if self.paths is not None and not self.paths:
            raise _Problems([(("paths",), "must list at least one path")])
        if self.s3 is not None and self.host is not None:
            raise _Problems([(("host",), "an s3 dataset takes no host")])
        if self.s3 is None and self.host is None:
            raise _Problems([(("host",), "required for a paths or dump dataset")])
        return self


class Software(_Model):
    """Software or service in scope (mail, antivirus, office suite, ...)."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    name: NonEmpty
    kind: str | None = Field(default=None, description="e.g. mail, antivirus, office, erp, backup.")
    version: str | None = None
    owner: Literal["provider", "client", "third-party"] = Field(
        default="client", description="Who owns the licence."
    )
    notes: str | None = None


class Perimeter(_Model):
    """What the contract covers: hosts, datasets and software."""

    hosts: list[Host] = Field(default_factory=list)
    known_hosts: str | None = Field(
        default=None, description="known_hosts file; default .handover/contracts/<id>/known_hosts."
    )
    s3: S3Settings | None = Field(
        default=None, description="S3 settings for this contract's buckets."
    )
    datasets: list[Dataset] = Field(default_factory=list)
    software: list[Software] = Field(default_factory=list)


# --------------------------------------------------------------------------- services, SLA


class Maintenance(_Model):
    """Preventive maintenance (MCO) visits."""

    visits_per_year: int = Field(default=0, ge=0)
    window: str | None = Field(
        default=None, description="Maintenance window, e.g. 'Tue 20:00-23:00'."
    )


class Hotline(_Model):
    """Hotline (support) terms."""

    mode: Literal["unlimited", "tickets", "hours"] = Field(
        default="unlimited", description="unlimited, a ticket quota, or an hours quota."
    )
    hours: str | None = Field(
        default=None, description="Opening hours, e.g. 'Mon-Fri 08:00-18:00'."
    )
    channels: list[Literal["phone", "email", "portal", "chat"]] = Field(default_factory=list)
    phone: str | None = None
    email: Email | None = None
    quota: int | None = Field(
        default=None, ge=0, description="Tickets or hours per year (mode tickets/hours)."
    )

    @model_validator(mode="after")
    def _quota(self) -> Self:
        if self.mode != "unlimited" and self.quota is None:
            raise _Problems([(("quota",), f"required when mode is {self.mode!r}")])
        return self


class Onsite(_Model):
    """On-site intervention (intervention sur site)."""

    delay_hours: float = Field(gt=0, description="Maximum delay before a technician is on site.")


class Services(_Model):
    """Services owed by the provider."""

    maintenance: Maintenance = Field(default_factory=Maintenance)
    hotline: Hotline = Field(default_factory=Hotline)
    onsite: Onsite | None = None
    technology_watch: bool = Field(
        default=False, description="Technology watch (veille technologique)."
    )


class Severity(_Model):
    """Response and resolution times for one incident severity."""

    level: str = Field(pattern=r"^P[1-9]$", description="P1 (critical) .. P4.")
    description: NonEmpty
    response_minutes: int = Field(
        gt=0, description="Time to first response (délai d'intervention)."
    )
    resolution_hours: float = Field(
        gt=0, description="Time to resolution (délai de rétablissement)."
    )


class Sla(_Model):
    """Service levels (niveaux de service) measured by the operational phase."""

    availability_percent: float = Field(default=99.0, gt=0, le=100)
    severities: list[Severity] = Field(default_factory=list)
    reporting_period: Literal["monthly", "quarterly"] = "monthly"
    disk_threshold_percent: int = Field(
        default=90, ge=1, le=100, description="Disk use that raises an alert."
    )
    cert_warning_days: int = Field(
        default=30, ge=0, description="Warn when a certificate expires within this."
    )

    @field_validator("severities")
    @classmethod
    def _unique_levels(cls, severities: list[Severity]) -> list[Severity]:
        levels = [s.level for s in severities]
        if len(set(levels)) != len(levels):
            raise ValueError(f"severity levels must be unique (got {', '.join(levels)})")
        return severities


# --------------------------------------------------------------------------- security


class AccessRule(_Model):
    """Who may access what (politique d'accès)."""

    who: NonEmpty
    what: NonEmpty


class ProviderAccess(_Model):
    """Provider SSH access to install at implementation and revoke at exit."""

    host: str = Field(description="Host name from perimeter.hosts.")
    account: str = Field(description="Account whose authorized_keys receives the keys.")
    public_keys: list[PublicKey] = Field(min_length=1, description="OpenSSH public key lines.")
    purpose: str | None = None
    verify_key: SecretRef | None = Field(
        default=None,
        description="Reference to the provider's private key matching `public_keys`: at exit, "
        "handover tries to log in with it to prove the access is revoked (ssh hosts).",
    )

    @field_validator("account")
    @classmethod
    def _account(cls, value: str) -> str:
        if not _ACCOUNT_RE.match(value):
            raise ValueError(f"bad account name {value[:40]!r}")
        return value


class Security(_Model):
    """Confidentiality, access policy and provider access."""

    confidentiality: str | None = None
    access_policy: list[AccessRule] = Field(default_factory=list)
    provider_access: list[ProviderAccess] = Field(default_factory=list)


# --------------------------------------------------------------------------- reversibility


class Delivery(_Model):
    """Where the restitution bundle goes: a local folder, or S3 with presigned links."""

    kind: Literal["local", "s3"]
    path: str | None = Field(default=None, description="local: destination folder.")
    bucket: str | None = Field(default=None, description="s3: bucket holding the bundle.")
    prefix: str = Field(default="", description="s3: key prefix.")
    link_expiry_days: int = Field(
        default=7,
        ge=1,
        le=7,
        description="s3: presigned link lifetime; S3 (SigV4) allows at most 7 days, "
        "links are re-issued on request during the retrieval period.",
    )
    client_bucket: str | None = Field(
        default=None, description="s3: also copy into the client's bucket."
    )

    @model_validator(mode="after")
    def _by_kind(self) -> Self:
        if self.kind == "local" and not self.path:
            raise _Problems([(("path",), "required for local delivery")])
        if self.kind == "s3" and not self.bucket:
            raise _Problems([(("bucket",), "required for s3 delivery")])
        return self


def _bound(name: str, low: int | None, high: int | None, why: str) -> Any:
    def check(value: int) -> int:
        if (low is not None and value < low) or (high is not None and value > high):
            if high is None:
                span = f"at least {low}"
            elif low is None:
                span = f"at most {high}"
            else:
                span = f"between {low} and {high}"
            raise ValueError(f"{name} is {value}, must be {span}: {why}")
        return value

    return AfterValidator(check)


class Deadlines(_Model):
    """Exit deadlines, bounded by the switching rules of the EU Data Act (2023/2854, art. 25)."""

    notice_months: Annotated[
        int,
        _bound(
            "notice_months",
            0,
            2,
            "the switching notice may not exceed 2 months (Data Act art. 25(2))",
        ),
    ] = Field(default=2, description="Exit notice period in months (0..2).")
    transition_days: Annotated[
        int,
        _bound(
            "transition_days",
            1,
            30,
            "the transitional period is at most 30 days (Data Act art. 25(2)); an extension "
            "is a separate notice",
        ),
    ] = Field(default=30, description="Transition period in days (1..30).")
    retrieval_days: Annotated[
        int,
        _bound(
            "retrieval_days",
            30,
            None,
            "the client must have at least 30 days to retrieve its data (Data Act art. 25(2))",
        ),
    ] = Field(default=30, description="Retrieval period in days (>= 30).")
    erasure_days: Annotated[
        int,
        _bound(
            "erasure_days",
            0,
            90,
            "provider copies must be erased within 90 days after retrieval (RGPD art. 28(3)(g); "
            "handover's upper bound)",
        ),
    ] = Field(default=30, description="Delay before provider copies are erased, in days (0..90).")


class Exemption(_Model):
    """A data category not returned or kept by the provider, and why."""

    category: NonEmpty
    reason: NonEmpty
    legal_basis: str | None = Field(
        default=None, description="e.g. 'Code de commerce L123-22, 10 ans'."
    )


class Ownership(_Model):
    """Who owns a deliverable produced during the contract."""

    item: NonEmpty
    owner: Literal["provider", "client", "third-party"]
    notes: str | None = None


class DataFormat(_Model):
    """Format in which a category of data is returned."""

    data: NonEmpty = Field(description="Category, e.g. 'databases'.")
    format: NonEmpty = Field(description="e.g. 'PostgreSQL custom dump (pg_restore)'.")


def load_recipients(entries: Sequence[str], base: Path, field: str) -> list[str]:
    """Expand recipient entries: literals as they are, `file:PATH` as the lines of that file.

    A recipients file follows `age -R`: one recipient per line, blank lines and
    `#` comments ignored. Relative paths are taken under `base` (the directory
    the command runs in). Raises KeyFormatError naming the file and line of a
    recipient that does not parse, or the file that cannot be read.
    """
    result: list[str] = []
    for entry in entries:
        if not entry.startswith("file:"):
            result.append(entry.strip())
            continue
        path = Path(entry[5:]).expanduser()
        if not path.is_absolute():
            path = base / path
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise KeyFormatError(
                f"{field}: recipients file {path}: cannot read ({reason})"
            ) from exc
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            problem = recipient_problem(line)
            if problem:
                raise KeyFormatError(f"{path}:{number}: bad recipient: {problem}")
            result.append(line)
    if not result:
        raise KeyFormatError(f"{field}: no recipient found")
    return result


class Reversibility(_Model):
    """How the client gets everything back at exit (réversibilité)."""

    recipients: list[RecipientEntry] = Field(
        min_length=1, description="Who can open the bundle: the client and/or the new provider."
    )
    signing_key: SecretRef = Field(description="Reference to the provider's OpenSSH Ed25519 key.")
    delivery: Delivery
    deadlines: Deadlines = Field(default_factory=Deadlines)
    formats: list[DataFormat] = Field(default_factory=list)
    exempted: list[Exemption] = Field(default_factory=list)
    software_ownership: list[Ownership] = Field(default_factory=list)

    def load_recipients(self, base: Path) -> list[str]:
        """Literal recipients plus the lines of `file:` recipients files (see `load_recipients`)."""
        return load_recipients(self.recipients, base, "reversibility.recipients")


class Backups(_Model):
    """Provider-side backups during the operational phase."""

    target: NonEmpty = Field(description="A folder, or s3://bucket/prefix.")
    retention_days: int = Field(default=30, ge=1)
    keep_last: int = Field(
        default=7, ge=1, description="Always keep this many, whatever their age."
    )
    schedule: str | None = Field(
        default=None, description="Cron expression of the backup deployment."
    )
    recipients: list[RecipientEntry] = Field(
        min_length=1, description="The provider's backup keys."
    )
    identity: SecretRef | None = Field(
        default=None,
        description="Reference to the backup identity, used by the sample restore check.",
    )

    def load_recipients(self, base: Path) -> list[str]:
        """Literal recipients plus the lines of `file:` recipients files (see `load_recipients`)."""
        return load_recipients(self.recipients, base, "backups.recipients")


# --------------------------------------------------------------------------- phases


class ChecklistItemSpec(_Model):
    """A checklist item as a template or a playbook `add` states it."""

    id: Slug
    title: NonEmpty
    clause: NonEmpty = Field(description="Contract clause or regulation served.")
    owner: Owner
    evidence_kind: EvidenceKind


class Waiver(_Model):
    """A template item the contract does not need, and why."""

    id: str
    reason: NonEmpty


class Reword(_Model):
    """A new title for a template item."""

    id: str
    title: NonEmpty


class PhaseOverrides(_Model):
    """Changes to the default checklist of one phase."""

    add: list[ChecklistItemSpec] = Field(default_factory=list)
    waive: list[Waiver] = Field(default_factory=list)
    reword: list[Reword] = Field(default_factory=list)


class Phases(_Model):
    """Checklist overrides per phase, on top of the templates."""

    takeover: PhaseOverrides = Field(default_factory=PhaseOverrides)
    implementation: PhaseOverrides = Field(default_factory=PhaseOverrides)
    operational: PhaseOverrides = Field(default_factory=PhaseOverrides)
    reversibility: PhaseOverrides = Field(default_factory=PhaseOverrides)

    @model_validator(mode="after")
    def _known_ids(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        for phase in PHASES:
            overrides: PhaseOverrides = getattr(self, phase)
            template_ids = [item["id"] for item in load_phase_template(phase)]
            for i, item in enumerate(overrides.add):
                if item.id in template_ids:
                    problems.append(
                        (
                            (phase, "add", i, "id"),
                            f"item {item.id!r} already exists in the template",
                        )
                    )
            known = list(dict.fromkeys(template_ids + [item.id for item in overrides.add]))
            for key in ("waive", "reword"):
                for i, change in enumerate(getattr(overrides, key)):
                    if change.id not in known:
                        problems.append(
                            (
                                (phase, key, i, "id"),
                                f"unknown item {change.id!r} (items: {', '.join(known)})",
                            )
                        )
        if problems:
            raise _Problems(problems)
        return self


# --------------------------------------------------------------------------- playbook


def _reference_problems(
    hosts: Sequence[str | None],
    datasets: Sequence[tuple[str | None, str | None]],
    access_hosts: Sequence[str | None],
) -> list[tuple[Loc, str]]:
    """Duplicate names and references to unknown hosts, located from the top of the playbook.

    Works on plain names so that `validate_playbook_text` can run it on the raw
    YAML too, and report these problems alongside type errors elsewhere.
    """
    problems: list[tuple[Loc, str]] = []
    seen: dict[str, int] = {}
    for i, name in enumerate(hosts):
        if name is None:
            continue
        if name in seen:
            problems.append(
                (
                    ("perimeter", "hosts", i, "name"),
                    f"duplicate host name {name!r} (also perimeter.hosts[{seen[name]}])",
                )
            )
        else:
            seen[name] = i
    known = ", ".join(seen) or "none"
    seen_ds: dict[str, int] = {}
    for i, (name, host) in enumerate(datasets):
        if name is not None and name in seen_ds:
            problems.append(
                (
                    ("perimeter", "datasets", i, "name"),
                    f"duplicate dataset name {name!r} (also perimeter.datasets[{seen_ds[name]}])",
                )
            )
        elif name is not None:
            seen_ds[name] = i
        if host is not None and host not in seen:
            problems.append(
                (("perimeter", "datasets", i, "host"), f"unknown host {host!r} (hosts: {known})")
            )
    for i, host in enumerate(access_hosts):
        if host is not None and host not in seen:
            problems.append(
                (
                    ("security", "provider_access", i, "host"),
                    f"unknown host {host!r} (hosts: {known})",
                )
            )
    return problems


def _raw_reference_problems(data: dict[str, Any]) -> list[tuple[Loc, str]]:
    """`_reference_problems` on raw YAML data (entries that are not mappings are skipped)."""

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


class Playbook(_Model):
    """A contract playbook: everything the phase flows need to know about one contract."""

    model_config = ConfigDict(title="handover playbook")

    contract: Contract
    perimeter: Perimeter
    services: Services = Field(default_factory=Services)
    sla: Sla = Field(default_factory=Sla)
    security: Security = Field(default_factory=Security)
    reversibility: Reversibility
    backups: Backups | None = None
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
            raise _Problems(problems)
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

    def datasets_of(self, host_name: str) -> list[Dataset]:
        """The datasets read from host `host_name` (never the S3 ones)."""
        return [d for d in self.perimeter.datasets if d.host == host_name]

    def secret_refs(self) -> list[tuple[str, str]]:
        """Every credential reference, as (field path, reference), e.g. for a preflight check."""
        refs: list[tuple[str, str]] = []
        for i, host in enumerate(self.perimeter.hosts):
            if host.credential:
                refs.append((f"perimeter.hosts[{i}].credential", host.credential))
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


# --------------------------------------------------------------------------- templates


def load_phase_template(phase: str) -> list[dict[str, Any]]:
    """Return the default checklist items of `phase` (handover/contract/templates/<phase>.yaml).

    Each item is a dict with id, title, clause, owner and evidence_kind.
    Raises UsageError for an unknown phase.
    """
    phase = parse_phase(phase)
    if phase not in _template_cache:
        text = (
            resources.files("handover.contract")
            .joinpath("templates", f"{phase}.yaml")
            .read_text("utf-8")
        )
        data = yaml.load(text, Loader=_FastLoader)  # a safe loader
        items = [ChecklistItemSpec.model_validate(item).model_dump() for item in data["items"]]
        _template_cache[phase] = items
    return [dict(item) for item in _template_cache[phase]]


_template_cache: dict[str, list[dict[str, Any]]] = {}


def phase_items(playbook: Playbook, phase: str) -> list[dict[str, Any]]:
    """The checklist items of `phase` for this contract: template plus the playbook's overrides.

    Added items come after the template ones. Reworded items get their new
    title. Waived items stay in the list with `waived_reason` set; every item
    has the key (None when not waived).
    """
    items = load_phase_template(phase)
    overrides: PhaseOverrides = getattr(playbook.phases, phase)
    items.extend(item.model_dump() for item in overrides.add)
    by_id = {item["id"]: item for item in items}
    for item in items:
        item["waived_reason"] = None
    for reword in overrides.reword:
        by_id[reword.id]["title"] = reword.title
    for waiver in overrides.waive:
        by_id[waiver.id]["waived_reason"] = waiver.reason
    return items


# --------------------------------------------------------------------------- loading


def _format_loc(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top)"


MAX_EXPANDED_NODES = 100_000


def _check_aliases(root: yaml.Node, file: str) -> None:
    """Refuse recursive aliases and alias bombs before anything walks the tree.

    Sizes are memoized per node, so this is linear in the document even when
    aliases make the expanded tree exponential.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            line = node.start_mark.line + 1
            raise PlaybookError(file, [f"{file}:{line}: recursive YAML alias"])
        active.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        active.discard(key)
        sizes[key] = min(total, MAX_EXPANDED_NODES + 1)
        return sizes[key]

    if size(root) > MAX_EXPANDED_NODES:
        raise PlaybookError(
            file,
            [
                f"{file}:1: (top): more than {MAX_EXPANDED_NODES} values "
                "once YAML aliases are expanded"
            ],
        )


def _compose(text: str, file: str) -> tuple[Any, dict[Loc, int], list[str]]:
    """Parse YAML; return (data, line of each location, duplicate-key problems)."""
    try:
        node = yaml.compose(text, Loader=_FastLoader)
        if node is not None:
            _check_aliases(node, file)
        data = yaml.SafeLoader("").construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f"{mark.line + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        detail = f"{context}, {problem}" if context else problem
        raise PlaybookError(file, [f"{file}:{line} YAML syntax error: {detail}"]) from exc
    lines: dict[Loc, int] = {}
    problems: list[str] = []
    if node is None:
        return data, lines, problems

    def walk(n: yaml.Node, loc: Loc) -> None:
        lines.setdefault(loc, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in n.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = key_node.value
                key_line = key_node.start_mark.line + 1
                if key in seen and key != "<<":
                    problems.append(
                        f"{file}:{key_line}: {_format_loc((*loc, key))}: duplicate key {key!r} "
                        f"(first at line {seen[key]})"
                    )
                    continue
                seen[key] = key_line
                lines[(*loc, key)] = key_line
                walk(value_node, (*loc, key))
        elif isinstance(n, yaml.SequenceNode):
            for index, item in enumerate(n.value):
                walk(item, (*loc, index))

    walk(node, ())
    return data, lines, problems


def _line_of(lines: dict[Loc, int], loc: Loc) -> int:
    """Line of the longest known prefix of `loc` (a missing field gets its parent's line)."""
    for end in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return line
    return 1


def _scan_literal_secrets(data: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str, str]]:
    """Yield (location, kind, value) for every string value that looks like a literal secret."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _scan_literal_secrets(value, (*loc, str(key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _scan_literal_secrets(value, (*loc, index))
    elif isinstance(data, str):
        kind = literal_secret_kind(data)
        if kind:
            yield loc, kind, data


_TYPE_WORDS = {
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "dict_type": "expected a mapping",
    "list_type": "expected a list",
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "date_type": "expected a date (YYYY-MM-DD)",
    "date_parsing": "expected a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "expected a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "expected a date (YYYY-MM-DD), not a date and time",
}


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, date):
        return "a date"
    return type(value).__name__


def _allowed_keys(loc: Loc) -> list[str]:
    """The field names of the model at `loc` (the parent of an unknown key)."""
    annotation: Any = Playbook
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(part, int):
            if get_origin(annotation) is list:
                annotation = get_args(annotation)[0]
                continue
            return []
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            if field is None:
                return []
            annotation = field.annotation
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip Optional[...] and Annotated[...] down to the model or list type."""
    while True:
        args = get_args(annotation)
        if get_origin(annotation) is Annotated:
            annotation = args[0]
        elif args and type(None) in args and get_origin(annotation) is not list:
            rest = [a for a in args if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _error_lines(
    exc: ValidationError, file: str, lines: dict[Loc, int], skip: set[Loc]
) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(error["loc"])
        kind = error["type"]
        original = (error.get("ctx") or {}).get("error")
        if isinstance(original, _Problems):
            for sub_loc, message in original.items:
                full = (*loc, *sub_loc)
                out.append(
                    (
                        _line_of(lines, full),
                        f"{file}:{_line_of(lines, full)}: {_format_loc(full)}: {message}",
                    )
                )
            continue
        if loc in skip:
            continue
        if kind == "extra_forbidden":
            key = str(loc[-1])
            allowed = _allowed_keys(loc[:-1])
            message = f"unknown key {key!r}"
            close = difflib.get_close_matches(key, allowed, n=1)
            if close:
                message += f" (did you mean {close[0]!r}?)"
            elif allowed:
                message += f" (allowed: {', '.join(allowed)})"
        elif kind == "missing":
            message = "missing required field"
        elif kind in _TYPE_WORDS:
            message = f"wrong type: {_TYPE_WORDS[kind]}, got {_describe(error.get('input'))}"
        elif kind == "value_error":
            message = error["msg"].removeprefix("Value error, ")
        else:
            message = error["msg"]
            if message and message[0].isupper() and not message[1:2].isupper():
                message = message[0].lower() + message[1:]
        line = _line_of(lines, loc)
        out.append((line, f"{file}:{line}: {_format_loc(loc)}: {message}"))
    return out


def validate_playbook_text(text: str, file: str) -> Playbook:
    """Validate playbook YAML text; `file` is the name used in messages. Raises PlaybookError."""
    data, lines, problems = _compose(text, file)
    if data is None:
        raise PlaybookError(file, [f"{file}:1: (top): empty playbook"])
    if not isinstance(data, dict):
        raise PlaybookError(
            file, [f"{file}:1: (top): expected a mapping of sections, got {_describe(data)}"]
        )
    found: list[tuple[int, str]] = [(int(p.split(":")[1]), p) for p in problems]
    secrets_found = list(_scan_literal_secrets(data))
    skip: set[Loc] = set()
    for loc, kind, _value in secrets_found:
        skip.add(loc)
        line = _line_of(lines, loc)
        found.append(
            (
                line,
                f"{file}:{line}: {_format_loc(loc)}: looks like a literal secret ({kind}); "
                f"store it in the vault or a file and give a reference ({_REF_HELP})",
            )
        )
    playbook: Playbook | None = None
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as exc:
        found.extend(_error_lines(exc, file, lines, skip))
        # Cross references are checked by Playbook only when every field is valid:
        # check them on the raw data too, so that all problems show at once.
        for loc, message in _raw_reference_problems(data):
            line = _line_of(lines, loc)
            found.append((line, f"{file}:{line}: {_format_loc(loc)}: {message}"))
    if found:
        ordered = [message for _line, message in sorted(found, key=lambda p: p[0])]
        # Belt and braces: no line may quote a secret-looking value.
        for _loc, _kind, value in secrets_found:
            ordered = [m.replace(value, "<redacted>") for m in ordered]
        raise PlaybookError(file, list(dict.fromkeys(ordered)))
    assert playbook is not None
    return playbook


def load_playbook(path: Path) -> Playbook:
    """Read and validate a playbook file.

    Raises PlaybookError with one `file:line: field.path: message` line per
    problem (YAML syntax, duplicate keys, unknown keys, types, slugs, cross
    references, deadlines, recipients, secrets), or naming the file when it
    cannot be read.
    """
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PlaybookError(file, [f"{file}: no such file"]) from exc
    except IsADirectoryError as exc:
        raise PlaybookError(file, [f"{file}: is a directory, not a playbook file"]) from exc
    except OSError as exc:
        raise PlaybookError(file, [f"{file}: cannot read ({exc.strerror})"]) from exc
    except UnicodeDecodeError as exc:
        raise PlaybookError(file, [f"{file}: not UTF-8 text (byte {exc.start})"]) from exc
    playbook = validate_playbook_text(text, file)
    playbook._source = Path(path)
    return playbook
