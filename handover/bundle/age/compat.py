"""Which `age` release a client needs to open a file, given the file's recipients.

A bundle promises that the client opens it with standard tools alone, and
the `age` of a stable distribution lags behind: Debian 12 ships age 1.1.1,
which reads X25519, SSH and scrypt recipients but not the post-quantum
`age1pq1...` ones (age 1.3.0 and later). Sealing to those is allowed (the
client may have a newer age), so the seal warns rather than refuses; this
module says what to warn about, and the CLI and the flows print it.
"""

from __future__ import annotations

from collections.abc import Iterable

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
