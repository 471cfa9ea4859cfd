"""Host-key trust for SSH hosts: pinned fingerprints, per-contract known_hosts, first contact.

A host is trusted in one of two ways, checked in this order:
1. the playbook pins a fingerprint (`host_key: SHA256:...`): the key the host
   presents must have exactly that fingerprint;
2. the contract's known_hosts file (OpenSSH format, hashed names allowed) has
   an entry for `[address]:port` (or `address` on port 22): paramiko compares
   the presented key with it.

Anything else is rejected (`paramiko.RejectPolicy` semantics: an unknown key
is never added silently), except on a deliberate first contact
(`pin_host_keys=True`), where the presented key is recorded into the contract
known_hosts and its fingerprint handed back for a human to confirm. A key that
differs from the pinned one raises HostKeyMismatch naming both fingerprints,
before any authentication, so no data moves to or from an impostor.

This module is the policy a paramiko connection applies, and so imports
paramiko: the connector imports it. The known_hosts files and the host-key
fetch are `known_hosts.py`, which does not: first contact and the `ssh`
binary's path use that one. Fingerprints are
`handover.sshkeys`' (the one SHA256 fingerprint of handover); the
operator-driven first contact (show, confirm, pin) is `first_contact.py`.
"""

from __future__ import annotations

from pathlib import Path

import paramiko

from handover.connectors.ssh.known_hosts import fingerprint, record_host_key
from handover.errors import HostKeyMismatch, PermanentConnectorError

__all__ = ["PinnedFingerprintPolicy"]


class PinnedFingerprintPolicy(paramiko.RejectPolicy):
    """RejectPolicy that accepts exactly one thing: the pinned fingerprint, or a first contact.

    paramiko calls `missing_host_key` only when the client holds no key for the
    host (known_hosts mismatches are raised by paramiko itself as
    BadHostKeyException). With a pinned fingerprint the presented key must match
    it; with `record_to` set (first contact asked for) the key is recorded;
    otherwise the key is rejected, naming the fingerprint a human can check.
    """

    def __init__(
        self, host: str, pinned: str | None, record_to: Path | None, address: str, port: int
    ) -> None:
        self.host = host
        self.pinned = pinned
        self.record_to = record_to
        self.address = address
        self.port = port
        self.presented: str | None = None
        self.recorded: str | None = None

    def missing_host_key(  # type: ignore[override]  # may accept, unlike its parent
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        self.presented = fingerprint(key)
        if self.pinned is not None:
            if self.presented != self.pinned:
                raise HostKeyMismatch(
                    f"host key mismatch for {hostname}: expected {self.pinned} (playbook), "
                    f"presented {self.presented}; no data was transferred",
                    host=self.host,
                )
            return
        if self.record_to is not None:
            self.recorded = record_host_key(self.record_to, self.address, self.port, key)
            return
        raise PermanentConnectorError(
            f"host key of {hostname} is not pinned (presented {self.presented}): pin it in the "
            "playbook (host_key) or the contract known_hosts, or run takeover with "
            "--pin-host-keys and confirm it",
            host=self.host,
        )
