"""One `security.provider_access` entry carried out on its host: installed, revoked, proven.

`access.py` edits an `authorized_keys` file (the marked lines) and tries a
login; this module applies it to a playbook entry: which account's file
(from the host's passwd, or by convention under a local sandbox root), the
records named by the account they open, and the proof of revocation the exit
asks for: none of the entry's keys left in the file, and, for an SSH host
with a `verify_key`, a login with the provider key refused. Apart from
`access.py` because that one knows nothing of playbooks.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from handover.connectors.base import HostConnector
from handover.errors import PermanentConnectorError
from handover.estate.access import (
    AccessRecord,
    install_provider_keys,
    remove_provider_keys,
    verify_key_refused,
)
from handover.secrets.references import resolve_secret
from handover.sshkeys import find_public_key, parse_public_key

if TYPE_CHECKING:
    from handover.contract.perimeter import Host
    from handover.contract.security import ProviderAccess


class ProviderAccessInstalled(AccessRecord):
    """The install record of one account, named by the account it opens."""

    account: str

    @model_serializer(mode="wrap")
    def _account_first(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The account leads the record: the exit report's tables show it as the first column."""
        data: dict[str, Any] = handler(self)
        return {"account": data.pop("account"), **data}


class ProviderAccessRevoked(ProviderAccessInstalled):
    """The removal record of one account, with the proof that the key no longer works."""

    keys_left_in_file: int = 0
    # True once a login with the provider key was refused (SSH hosts with a verify_key);
    # absent when no login was tried.
    login_refused: bool | None = Field(default=None, exclude_if=lambda value: value is None)


def sandboxed(host: Host) -> bool:
    """A local host whose root is a folder standing for another machine (not `/`)."""
    return host.transport == "local" and (host.root or "/") != "/"


def account_authorized_keys(connector: HostConnector, account: str) -> str:
    """The default `~/.ssh/authorized_keys` of `account` on the host (from `getent passwd`)."""
    result = connector.run(f"getent passwd {shlex.quote(account)}", timeout_s=30)
    fields = result.stdout.decode("utf-8", "replace").strip().split(":")
    if result.exit_status != 0 or len(fields) < 6 or not fields[5].startswith("/"):
        raise PermanentConnectorError(f"account {account!r}: not found", host=connector.name)
    return f"{fields[5].rstrip('/')}/.ssh/authorized_keys"


def authorized_keys_path(host: Host, connector: HostConnector, account: str) -> str:
    """The account's authorized_keys: from the host's passwd, or by convention on a local root."""
    if sandboxed(host):
        home = "/root" if account == "root" else f"/home/{account}"
        return f"{home}/.ssh/authorized_keys"
    return account_authorized_keys(connector, account)


def install_provider_access(
    connector: HostConnector, host: Host, access: ProviderAccess, contract_id: str, actor: str
) -> ProviderAccessInstalled:
    """Add the entry's keys (marked with the contract) to its account; idempotent."""
    path = authorized_keys_path(host, connector, access.account)
    record = install_provider_keys(
        connector,
        path,
        list(access.public_keys),
        contract_id,
        # A sandbox root stands for another machine: its accounts are not ours to chown to.
        owner=None if sandboxed(host) else access.account,
        actor=actor,
    )
    return ProviderAccessInstalled(account=access.account, **record.model_dump())


def keys_left(authorized_keys: bytes, public_keys: Sequence[str]) -> list[str]:
    """The `public_keys` still in an authorized_keys file, whatever their options or comment."""
    still_there = {
        found[1].blob
        for line in authorized_keys.decode("utf-8", "replace").splitlines()
        if (found := find_public_key(line)) is not None
    }
    return [key for key in public_keys if parse_public_key(key).blob in still_there]


def revoke_provider_access(
    connector: HostConnector, host: Host, access: ProviderAccess, contract_id: str, actor: str
) -> ProviderAccessRevoked:
    """Remove exactly the contract's lines from the account, then check no entry key is left.

    A key of the entry found in the file after the removal (the client copied
    it without our marker, say) fails the revocation: PermanentConnectorError.
    """
    path = authorized_keys_path(host, connector, access.account)
    record = remove_provider_keys(connector, path, contract_id, actor=actor)
    remaining = connector.read_file(path) if record.sha256_after else b""
    leftover = keys_left(remaining, access.public_keys)
    if leftover:
        raise PermanentConnectorError(
            f"{access.account}: {len(leftover)} provider key(s) still in {path}", host=access.host
        )
    return ProviderAccessRevoked(account=access.account, **record.model_dump())


def prove_login_refused(
    revoked: ProviderAccessRevoked, host: Host, access: ProviderAccess, known_hosts: Path
) -> ProviderAccessRevoked:
    """The record with `login_refused`, once a login with the `verify_key` was refused.

    Only for SSH hosts whose entry has a `verify_key` (the record is returned
    as it is otherwise). A login that still succeeds fails the revocation
    (PermanentConnectorError); the host key is checked against `known_hosts`.
    """
    if host.transport != "ssh" or not access.verify_key:
        return revoked
    if host.address is None:  # pragma: no cover - the playbook requires it for ssh hosts
        raise RuntimeError("provider access: internal error: ssh host without an address")
    private_key = resolve_secret(access.verify_key)
    if not verify_key_refused(host.address, host.port, access.account, private_key, known_hosts):
        raise PermanentConnectorError(
            f"{access.account}: the provider key still logs in after removal", host=access.host
        )
    return revoked.model_copy(update={"login_refused": True})
