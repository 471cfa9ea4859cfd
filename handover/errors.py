"""The error tree of handover.

    HandoverError                      exit 1 unless said otherwise
    ├── UsageError                     exit 2: bad input from the user
    │   ├── PlaybookError              file, line, field path
    │   ├── KeyFormatError             a recipient or identity that does not parse
    │   └── SecretRefError             a credential reference that is malformed or unresolvable
    ├── InvalidTransition              a checklist move the state machine forbids
    ├── BundleError
    │   ├── BundleCorrupt              a hash, tag or signature that does not match
    │   │   └── AgeFormatError         header/HMAC/payload failures of the age format
    │   └── NoMatchingIdentity         no identity unwraps the file key
    ├── ConnectorError                 carries the host (or bucket) it concerns
    │   ├── TransientConnectorError    worth retrying: timeouts, refused connections
    │   └── PermanentConnectorError    not worth retrying
    │       ├── AuthFailed
    │       └── HostKeyMismatch        shows both fingerprints
    ├── VaultError                     wrong key, tampered file, unknown entry
    ├── AuditError                     the audit trail cannot be trusted as it stands
    │   ├── AuditTornTail              the log's last line is torn: `handover audit --repair`
    │   └── AuditTrailBroken           chain, checkpoints or checklists disagree; `problems`
    └── DiskFull                       ENOSPC/EDQUOT: file, file system, bytes written, free, needed

Messages name the file, host or field they concern and never a secret.
"""

from __future__ import annotations


class HandoverError(Exception):
    """Base of every error handover raises on purpose."""

    exit_code: int = 1


class UsageError(HandoverError):
    """Bad input from the user: arguments, files, keys. The CLI exits 2."""

    exit_code = 2


class PlaybookError(UsageError):
    """One or more problems in a playbook file.

    `problems` holds one line per problem, each naming file, line and field path.
    """

    def __init__(self, file: str, problems: list[str]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("\n".join(problems) if problems else f"{file}: invalid playbook")


class KeyFormatError(UsageError):
    """A recipient, identity or signing key that does not parse."""


class SecretRefError(UsageError):
    """A credential reference that is malformed or that nothing resolves."""


class InvalidTransition(HandoverError):
    """A checklist status change that the state machine forbids."""


class BundleError(HandoverError):
    """A restitution bundle that cannot be written, verified or opened."""


class BundleCorrupt(BundleError):
    """A hash, authentication tag or signature that does not match."""


class NoMatchingIdentity(BundleError):
    """None of the given identities unwraps the file key."""


class AgeFormatError(BundleCorrupt):
    """An age file that is malformed; `kind` is header, hmac, payload or armor."""

    def __init__(self, message: str, kind: str = "header") -> None:
        self.kind = kind
        super().__init__(message)


class ConnectorError(HandoverError):
    """A failure talking to a client system; `host` names it."""

    def __init__(self, message: str, host: str = "") -> None:
        self.host = host
        super().__init__(f"{host}: {message}" if host else message)


class TransientConnectorError(ConnectorError):
    """Worth retrying: a timeout, a refused or reset connection."""


class PermanentConnectorError(ConnectorError):
    """Not worth retrying: the same call will fail the same way."""


class AuthFailed(PermanentConnectorError):
    """The credentials were refused."""


class HostKeyMismatch(PermanentConnectorError):
    """The host presented a key other than the pinned one."""


class VaultError(HandoverError):
    """The vault cannot be opened or an entry is missing."""


class AuditError(HandoverError):
    """The audit trail (log, checkpoints, checklists) cannot be trusted as it stands."""


class AuditTornTail(AuditError):
    """The audit log ends with a torn line; appends stop until `handover audit --repair`."""


class AuditTrailBroken(AuditError):
    """The audit log, its signed checkpoints or the checklists disagree.

    `problems` holds one line per problem, each saying what and where.
    """

    def __init__(
        self, what: str, problems: list[str], verdict: str = "audit trail NOT intact"
    ) -> None:
        self.problems = problems
        super().__init__("\n".join([*problems, f"{what}: {verdict}"]))


class DiskFull(HandoverError):
    """A write that ran out of space (ENOSPC) or quota (EDQUOT); nothing partial is left.

    Built by `handover.state.diskspace.disk_full_error`, so that every writer
    says it the same way: the file, its file system, the bytes written so
    far, the space left and, when the writer knew it, the space needed.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str,
        filesystem: str,
        written: int,
        free: int | None,
        needed: int | None = None,
    ) -> None:
        self.path = path
        self.filesystem = filesystem
        self.written = written
        self.free = free
        self.needed = needed
        super().__init__(message)
