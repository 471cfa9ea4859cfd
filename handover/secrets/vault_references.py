"""`vault:` credential references: their syntax, their resolver, and which ones do not resolve.

`vault:CONTRACT/NAME` yields the entry's secret, `vault:CONTRACT/NAME#username`
its username (for S3 access key ids kept beside their secret key).

Kept apart from the vault itself so that the dependency runs one way:
this module uses the vault and registers its resolver with
`handover.secrets.references`, which knows nothing of the vault. The
package's `__init__` imports this module, so importing anything from
`handover.secrets` makes `vault:` references resolvable.
"""

from __future__ import annotations

from collections.abc import Iterable

from handover.errors import SecretRefError, VaultError
from handover.secrets.references import parse_ref, register_resolver
from handover.secrets.vault import NAME_PATTERN, Vault, VaultEntry
from handover.state.home import CONTRACT_ID_PATTERN


def parse_vault_ref(rest: str) -> tuple[str, str, str]:
    """Split `CONTRACT/NAME[#FIELD]` into (contract, name, field); field is "" or "username"."""
    target, _, fld = rest.partition("#")
    contract, sep, name = target.partition("/")
    if not sep or not CONTRACT_ID_PATTERN.match(contract) or not NAME_PATTERN.match(name):
        raise SecretRefError(f"vault:{rest}: expected vault:CONTRACT/NAME[#username]")
    if fld not in ("", "username"):
        raise SecretRefError(f"vault:{rest}: unknown field {fld!r} (only #username)")
    return contract, name, fld


def resolve_vault_ref(rest: str) -> bytes:
    """The `vault:` resolver: raises SecretRefError naming the reference, never a value."""
    contract, name, fld = parse_vault_ref(rest)
    try:
        vault = Vault(contract)
        if fld == "username":
            return vault.get(name).username.encode("utf-8")
        return vault.secret(name).reveal()
    except VaultError as exc:
        raise SecretRefError(f"vault:{rest}: {exc}") from exc


register_resolver("vault", resolve_vault_ref)


def missing_references(refs: Iterable[tuple[str, str]], vault: Vault) -> list[str]:
    """Every `vault:` reference of `refs` that does not resolve, as `REF (field path)`.

    `refs` are (field path, reference) pairs, as `Playbook.secret_refs()`
    lists them. The takeover item "credentials received" is done only when
    this is empty. References to another contract's vault are checked in
    that vault.
    """
    missing: list[str] = []
    names_by_contract: dict[str, dict[str, VaultEntry] | None] = {}
    for field_path, ref in refs:
        try:
            scheme, rest = parse_ref(ref)
        except SecretRefError:
            missing.append(f"{ref} ({field_path}: malformed reference)")
            continue
        if scheme != "vault":
            continue
        try:
            contract, name, fld = parse_vault_ref(rest)
        except SecretRefError:
            missing.append(f"{ref} ({field_path}: malformed reference)")
            continue
        if contract not in names_by_contract:
            target = vault if contract == vault.contract_id else Vault(contract)
            try:
                names_by_contract[contract] = {e.name: e for e in target.entries()}
            except VaultError:
                names_by_contract[contract] = None
        entries = names_by_contract[contract]
        if entries is None:
            missing.append(f"{ref} ({field_path}: no readable vault for {contract})")
        elif name not in entries:
            missing.append(f"{ref} ({field_path})")
        elif fld == "username" and not entries[name].username:
            missing.append(f"{ref} ({field_path}: entry has no username)")
    return missing
