"""Which recipients may share a file, and which `age` release a client needs to open it.

A bundle promises that the client opens it with standard tools alone, and
the `age` of a stable distribution lags behind: Debian 12 ships age 1.1.1,
which reads X25519, SSH and scrypt recipients but not the post-quantum
`age1pq1...` ones (age 1.3.0 and later). Sealing to those is allowed (the
client may have a newer age), so the seal warns rather than refuses; this
module says what to warn about, and the CLI and the flows print it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from handover.bundle.age.mlkem import MLKEM768X25519Recipient
from handover.bundle.age.scrypt import ScryptRecipient
from handover.bundle.age.stanza import Recipient
from handover.sshkeys import shown

STABLE_AGE_VERSION = (1, 1, 1)  # Debian 12 (bookworm)
STABLE_AGE_RELEASE = "Debian 12 ships age 1.1.1"


def client_requirements(recipients: Iterable[Recipient]) -> list[str]:
    """One warning per recipient that Debian 12's `age` cannot decrypt, naming the age needed."""
    warnings: list[str] = []
    for recipient in recipients:
        needed = recipient.min_age_version
        if needed > STABLE_AGE_VERSION:
            version = ".".join(str(part) for part in needed)
            warnings.append(
                f"recipient {shown(str(recipient))!r}: the client needs age {version} or later "
                f"to decrypt this bundle ({STABLE_AGE_RELEASE}, which cannot)"
            )
    return warnings


def recipients_problem(recipients: Sequence[Recipient]) -> str | None:
    """Why these recipients cannot share one age file (the rules of age), or None.

    A passphrase must be alone (anyone holding it could otherwise swap the
    other recipients), and post-quantum recipients are never mixed with classic
    ones (the classic ones would void the quantum resistance).
    """
    if not recipients:
        return "no recipient"
    if len(recipients) > 1 and any(isinstance(r, ScryptRecipient) for r in recipients):
        return "a passphrase (scrypt) recipient must be the only recipient"
    post_quantum = [isinstance(r, MLKEM768X25519Recipient) for r in recipients]
    if any(post_quantum) and not all(post_quantum):
        return (
            "post-quantum (age1pq1...) and classic recipients cannot be mixed: "
            "the classic ones would void the quantum resistance"
        )
    return None
