"""handover: the core library of a managed-services contract's lifecycle.

Nothing in this package imports Prefect: a client can verify and open a
bundle, and a test can call any function, without a Prefect server.

The names exported here are the public API, the small typed set the CLI, the
Prefect tasks and flows, and scripts of our own or of a client use: the error
tree, the playbook, checklists and their audit log, bundles (seal, verify,
open, sign), secrets and the vault, and host connectors. Each name lives in
the module of its domain (see `_EXPORTS`) and is imported on first use, so
`import handover` stays cheap: paramiko, boto3 or pykeepass load only when a
name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # errors
    "HandoverError": "handover.errors",
    "UsageError": "handover.errors",
    "PlaybookError": "handover.errors",
    "KeyFormatError": "handover.errors",
    "SecretRefError": "handover.errors",
    "InvalidTransition": "handover.errors",
    "BundleError": "handover.errors",
    "BundleCorrupt": "handover.errors",
    "AgeFormatError": "handover.errors",
    "NoMatchingIdentity": "handover.errors",
    "ConnectorError": "handover.errors",
    "TransientConnectorError": "handover.errors",
    "PermanentConnectorError": "handover.errors",
    "AuthFailed": "handover.errors",
    "HostKeyMismatch": "handover.errors",
    "VaultError": "handover.errors",
    # the contract
    "Playbook": "handover.contract.playbook",
    "load_playbook": "handover.contract.loader",
    "Phase": "handover.phases",
    "PHASES": "handover.phases",
    # checklists and the audit log
    "Status": "handover.checklist.model",
    "Evidence": "handover.checklist.model",
    "ChecklistItem": "handover.checklist.model",
    "Checklist": "handover.checklist.model",
    "ChecklistStore": "handover.checklist.store",
    "AuditLog": "handover.checklist.audit",
    # bundles
    "BundleWriter": "handover.bundle.writer",
    "BundleResult": "handover.bundle.writer",
    "Manifest": "handover.bundle.manifest",
    "verify_bundle": "handover.bundle.reader",
    "open_bundle": "handover.bundle.extract",
    "SigningKey": "handover.bundle.sshsig",
    "parse_recipient": "handover.bundle.age",
    "load_identities": "handover.bundle.age",
    # secrets
    "Secret": "handover.secrets.references",
    "resolve_secret": "handover.secrets.references",
    "Vault": "handover.secrets.vault",
    # hosts
    "HostConnector": "handover.connectors.base",
    "connect_host": "handover.connectors.factory",
}

__all__ = [
    "PHASES",
    "AgeFormatError",
    "AuditLog",
    "AuthFailed",
    "BundleCorrupt",
    "BundleError",
    "BundleResult",
    "BundleWriter",
    "Checklist",
    "ChecklistItem",
    "ChecklistStore",
    "ConnectorError",
    "Evidence",
    "HandoverError",
    "HostConnector",
    "HostKeyMismatch",
    "InvalidTransition",
    "KeyFormatError",
    "Manifest",
    "NoMatchingIdentity",
    "PermanentConnectorError",
    "Phase",
    "Playbook",
    "PlaybookError",
    "Secret",
    "SecretRefError",
    "SigningKey",
    "Status",
    "TransientConnectorError",
    "UsageError",
    "Vault",
    "VaultError",
    "connect_host",
    "load_identities",
    "load_playbook",
    "open_bundle",
    "parse_recipient",
    "resolve_secret",
    "verify_bundle",
]  # the names of _EXPORTS, spelled out for linters and readers


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'handover' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:
    from handover.bundle.age import load_identities, parse_recipient
    from handover.bundle.extract import open_bundle
    from handover.bundle.manifest import Manifest
    from handover.bundle.reader import verify_bundle
    from handover.bundle.sshsig import SigningKey
    from handover.bundle.writer import BundleResult, BundleWriter
    from handover.checklist.audit import AuditLog
    from handover.checklist.model import Checklist, ChecklistItem, Evidence, Status
    from handover.checklist.store import ChecklistStore
    from handover.connectors.base import HostConnector
    from handover.connectors.factory import connect_host
    from handover.contract.loader import load_playbook
    from handover.contract.playbook import Playbook
    from handover.errors import (
        AgeFormatError,
        AuthFailed,
        BundleCorrupt,
        BundleError,
        ConnectorError,
        HandoverError,
        HostKeyMismatch,
        InvalidTransition,
        KeyFormatError,
        NoMatchingIdentity,
        PermanentConnectorError,
        PlaybookError,
        SecretRefError,
        TransientConnectorError,
        UsageError,
        VaultError,
    )
    from handover.phases import PHASES, Phase
    from handover.secrets.references import Secret, resolve_secret
    from handover.secrets.vault import Vault
