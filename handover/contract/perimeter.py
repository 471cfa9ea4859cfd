"""The `perimeter` section: the hosts, datasets and software the contract covers.

Flows reach hosts and read datasets from here only. Each model checks what
depends on its own fields (an ssh host needs an address, a dataset exactly one
source); names that refer across sections are checked by `Playbook`.
"""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from handover.contract.base import Loc, LocatedProblems, PlaybookModel
from handover.contract.fields import AbsPath, Fingerprint, NonEmpty, SecretRef, Slug
from handover.contract.literal_secrets import ENV_HELP, command_secret_kind

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Variables that change how the shell or the loader runs the command, not what it reads.
_RESERVED_ENV = frozenset({"PATH", "IFS", "ENV", "BASH_ENV", "SHELL", "HOME", "PS4"})
MAX_DUMP_ENV = 32


class Host(PlaybookModel):
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
            raise LocatedProblems(problems)
        return self


class S3Settings(PlaybookModel):
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
            raise LocatedProblems([((missing,), "access_key_id and secret_access_key go together")])
        return self


class DumpSpec(PlaybookModel):
    """A database dump: a command run on the host whose stdout is the dump file.

    The command is text anyone reading the playbook, its documents or the
    host's process list sees, so it holds no secret (`literal_secrets`): the
    passwords a dump needs are named in `env` and reach the command through
    its environment only.
    """

    command: NonEmpty = Field(
        description="Command writing the dump to stdout, e.g. 'pg_dump -Fc acme'. No secret in "
        "it: give passwords in `env`."
    )
    filename: NonEmpty = Field(description="Name of the dump file inside the volume.")
    env: dict[str, SecretRef] = Field(
        default_factory=dict,
        max_length=MAX_DUMP_ENV,
        description="Environment variables of the dump command, each a credential reference "
        "(env:, file:, vault:, prefect-secret:) resolved when the dump runs, e.g. "
        "{PGPASSWORD: vault:acme-2026/erp-db}. Sent to the host through the command's stdin "
        "(SSH) or the process environment (local), never on a command line.",
    )

    @field_validator("command")
    @classmethod
    def _no_literal_secret(cls, value: str) -> str:
        kind = command_secret_kind(value)
        if kind:
            raise ValueError(f"a secret on the command line ({kind}): {ENV_HELP}")
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        problems: list[tuple[Loc, str]] = []
        for name in value:
            if not _ENV_NAME_RE.match(name):
                problems.append(((name,), "not a variable name: letters, digits and '_'"))
            elif name in _RESERVED_ENV or name.startswith("LD_"):
                problems.append(
                    ((name,), "changes how the command runs, not what it reads: not allowed")
                )
        if problems:
            raise LocatedProblems(problems)
        return value

    @field_validator("filename")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if "/" in value or value in (".", ".."):
            raise ValueError(f"filename {value[:80]!r} must be a plain file name, without '/'")
        return value


class S3DatasetSpec(PlaybookModel):
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


class Dataset(PlaybookModel):
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
            raise LocatedProblems([(("paths",), "must list at least one path")])
        if self.s3 is not None and self.host is not None:
            raise LocatedProblems([(("host",), "an s3 dataset takes no host")])
        if self.s3 is None and self.host is None:
            raise LocatedProblems([(("host",), "required for a paths or dump dataset")])
        return self


class Software(PlaybookModel):
    """Software or service in scope (mail, antivirus, office suite, ...)."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    name: NonEmpty
    kind: str | None = Field(default=None, description="e.g. mail, antivirus, office, erp, backup.")
    version: str | None = None
    owner: Literal["provider", "client", "third-party"] = Field(
        default="client", description="Who owns the licence."
    )
    notes: str | None = None


class Perimeter(PlaybookModel):
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
