"""The demo's keys: the client's age identity and signing key, the provider's keys.

`handover demo` encrypts the bundle to a client, backs up to the provider,
signs, and has the client sign its acceptance, as a real contract does, so
it needs the keys a real contract names in its playbook. They are generated once under the demo's
keys folder and kept; a real contract brings its own.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from handover.state.atomic import write_atomic


class DemoKeys(BaseModel):
    """Paths of the demo's keys (all files 0600 in a 0700 folder)."""

    model_config = ConfigDict(frozen=True)

    folder: Path
    client_key: Path
    client_recipients: Path
    backup_key: Path
    backup_recipients: Path
    signing_key: Path
    signing_pub: Path
    # The client's OpenSSH Ed25519 key that signs its acceptance (the demo's automatic answer
    # uses it through HANDOVER_TEST_SIGNER_KEY), and the allowed_signers file naming it.
    client_signing_key: Path
    client_allowed_signers: Path
    created: list[str]  # names of the files written by this call (empty when all existed)


def _age_identity_files(key_path: Path, recipients_path: Path, created: list[str]) -> None:
    from handover.bundle.age import X25519Identity, load_identities

    if key_path.exists():
        identities = load_identities(key_path)
        public = str(identities[0].recipient())  # type: ignore[attr-defined]
    else:
        identity = X25519Identity.generate()
        public = str(identity.recipient())
        stamp = datetime.now(UTC).replace(microsecond=0).isoformat()
        text = f"# created: {stamp}\n# public key: {public}\n{identity}\n"
        write_atomic(key_path, text.encode(), mode=0o600)
        created.append(key_path.name)
    if not recipients_path.exists():
        write_atomic(recipients_path, f"{public}\n".encode(), mode=0o600)
        created.append(recipients_path.name)


CLIENT_PRINCIPAL = "client@demo"


def _signing_key_files(key_path: Path, pub_path: Path, comment: str, created: list[str]) -> str:
    """An OpenSSH Ed25519 key and its .pub, made once; the public line."""
    from handover.bundle.sshsig import SigningKey

    if key_path.exists():
        key = SigningKey.load(key_path)
    else:
        key = SigningKey.generate()
        write_atomic(key_path, key.private_openssh(), mode=0o600)
        created.append(key_path.name)
    public = key.public_line(comment)
    if not pub_path.exists():
        write_atomic(pub_path, (public + "\n").encode(), mode=0o600)
        created.append(pub_path.name)
    return public


def make_demo_keys(keys_dir: Path) -> DemoKeys:
    """Generate, once, the demo's client and provider keys.

    `client.key`/`client.recipients` (what the client decrypts the bundle with),
    `backup.key`/`backup.recipients` (the provider's backup key),
    `provider-signing`/`provider-signing.pub` (OpenSSH Ed25519, signs SHA256SUMS),
    `client-signing`/`client-signing.pub` (OpenSSH Ed25519, signs the client's acceptance)
    and `client.allowed_signers` (`client@demo` and that key: the playbook's
    `reversibility.client_signers`, and what `ssh-keygen -Y verify -f` reads).
    Existing files are kept; a missing public half is derived from its private key.
    """

    folder = Path(keys_dir).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    created: list[str] = []
    _age_identity_files(folder / "client.key", folder / "client.recipients", created)
    _age_identity_files(folder / "backup.key", folder / "backup.recipients", created)
    signing_path = folder / "provider-signing"
    pub_path = folder / "provider-signing.pub"
    _signing_key_files(signing_path, pub_path, "demo-provider", created)
    client_signing = folder / "client-signing"
    client_public = _signing_key_files(
        client_signing, folder / "client-signing.pub", "demo-client", created
    )
    allowed = folder / "client.allowed_signers"
    if not allowed.exists():
        write_atomic(allowed, f"{CLIENT_PRINCIPAL} {client_public}\n".encode(), mode=0o600)
        created.append(allowed.name)
    return DemoKeys(
        folder=folder,
        client_key=folder / "client.key",
        client_recipients=folder / "client.recipients",
        backup_key=folder / "backup.key",
        backup_recipients=folder / "backup.recipients",
        signing_key=signing_path,
        signing_pub=pub_path,
        client_signing_key=client_signing,
        client_allowed_signers=allowed,
        created=created,
    )
