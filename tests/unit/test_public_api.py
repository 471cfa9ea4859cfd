"""The public API of the core: a small, typed set of names at the package top.

Like httpx's test of its exported members, this guards the surface the CLI,
the Prefect tasks and flows, and scripts rely on: adding or removing a name
is a decision, made here on purpose.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import handover

EXPECTED = {
    # errors
    "HandoverError",
    "UsageError",
    "PlaybookError",
    "KeyFormatError",
    "SecretRefError",
    "InvalidTransition",
    "BundleError",
    "BundleCorrupt",
    "AgeFormatError",
    "NoMatchingIdentity",
    "ConnectorError",
    "TransientConnectorError",
    "PermanentConnectorError",
    "AuthFailed",
    "HostKeyMismatch",
    "VaultError",
    # the contract, checklists, bundles, secrets, hosts
    "Playbook",
    "load_playbook",
    "Phase",
    "PHASES",
    "Status",
    "Evidence",
    "ChecklistItem",
    "Checklist",
    "ChecklistStore",
    "AuditLog",
    "BundleWriter",
    "BundleResult",
    "Manifest",
    "verify_bundle",
    "open_bundle",
    "SigningKey",
    "parse_recipient",
    "load_identities",
    "Secret",
    "resolve_secret",
    "Vault",
    "HostConnector",
    "connect_host",
}


def test_exported_names_are_exactly_the_public_api() -> None:
    assert set(handover.__all__) == EXPECTED
    assert set(handover._EXPORTS) == EXPECTED  # the lazy-import table and __all__ agree


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_exported_name_resolves_to_its_defining_module(name: str) -> None:
    value = getattr(handover, name)
    module = getattr(value, "__module__", None) or type(value).__module__
    if name == "PHASES":
        module = "handover.phases"
    assert module.startswith("handover."), (name, module)
    assert name in dir(handover)


def test_errors_share_one_root_and_usage_errors_exit_2() -> None:
    errors = [getattr(handover, n) for n in EXPECTED if n.endswith(("Error", "Failed", "Mismatch"))]
    errors += [handover.InvalidTransition, handover.NoMatchingIdentity, handover.BundleCorrupt]
    assert all(issubclass(e, handover.HandoverError) for e in errors)
    assert handover.PlaybookError("f", ["f:1: x"]).exit_code == 2
    assert handover.BundleCorrupt("x").exit_code == 1


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'reports'"):
        _ = handover.reports  # type: ignore[attr-defined]


def test_import_is_cheap_and_never_loads_prefect() -> None:
    """`import handover` loads no heavy dependency; using the whole API never loads Prefect."""
    code = (
        "import sys, handover\n"
        "heavy = {'prefect', 'paramiko', 'boto3', 'pykeepass'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
        "for name in handover.__all__: getattr(handover, name)\n"
        "print('prefect' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.splitlines()
    assert out == ["[]", "False"], out
