"""A signed acceptance dropped beside the delivered bundle: `acceptance.txt` and its `.sig`.

The client (or `handover acceptance submit`) may answer without the Prefect
UI by putting the signed pair where it fetched the bundle: the `<bundle>.exit`
folder beside a folder delivery, or the `<bundle>.exit/` prefix beside an S3
delivery, where the exit report and the erasure certificate go later. The
flow looks there while it waits. Anyone who can write there can drop a
pair; only one signed by a client signer is acted on. Apart from the
statement's checks because this is only file transport.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from handover.errors import UsageError
from handover.exit.acceptance import MAX_SIGNATURE_BYTES, MAX_STATEMENT_BYTES, AcceptanceRejected
from handover.exit.delivery import DeliveryRecord, FolderDelivery, deliver_beside_bundle

if TYPE_CHECKING:
    from handover.connectors.s3.client import S3Client
    from handover.contract.playbook import Playbook

DROP_NAME = "acceptance.txt"
SIG_SUFFIX = ".sig"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def drop_name(name: str) -> str:
    """A statement's file name in the drop folder (its `.sig` accepted too); UsageError else.

    Plain names only: a form answer must not make the flow read anything but
    the drop folder.
    """
    text = name.strip().removesuffix(SIG_SUFFIX)
    if not _NAME_RE.match(text) or ".." in text:
        raise UsageError(
            f"{name[:60]!r}: give the name of a statement in the drop folder, "
            f"e.g. {DROP_NAME} (its signature is {DROP_NAME}{SIG_SUFFIX} beside it)"
        )
    return text


def drop_location(playbook: Playbook, bundle_name: str, delivery: DeliveryRecord) -> str:
    """Where a signed acceptance is dropped for this delivery (a folder or an s3:// prefix)."""
    if isinstance(delivery, FolderDelivery):
        return str(Path(delivery.location).parent / f"{bundle_name}.exit")
    from handover.connectors.s3.client import join_key

    d = playbook.reversibility.delivery
    return f"s3://{d.bucket}/{join_key(d.prefix or '', f'{bundle_name}.exit')}"


def _read_small(data: bytes, limit: int, what: str) -> bytes:
    if len(data) > limit:
        raise AcceptanceRejected(f"{what}: larger than {limit} bytes")
    return data


def read_dropped(
    playbook: Playbook,
    bundle_name: str,
    delivery: DeliveryRecord,
    name: str = DROP_NAME,
    *,
    s3: S3Client | None = None,
) -> tuple[bytes, str] | None:
    """The dropped (statement bytes, signature text), or None while either file is missing."""
    name = drop_name(name)
    if isinstance(delivery, FolderDelivery):
        folder = Path(drop_location(playbook, bundle_name, delivery))
        statement, signature = folder / name, folder / f"{name}{SIG_SUFFIX}"
        if not statement.is_file() or not signature.is_file():
            return None
        text = _read_small(statement.read_bytes(), MAX_STATEMENT_BYTES, str(statement))
        sig = _read_small(signature.read_bytes(), MAX_SIGNATURE_BYTES, str(signature))
        return text, sig.decode("utf-8", "replace")
    from handover.connectors.s3.client import join_key, s3_client
    from handover.connectors.s3.delivery import S3BundleSource, S3Target

    d = playbook.reversibility.delivery
    assert d.bucket is not None
    client = s3 or s3_client(playbook.perimeter.s3)
    prefix = join_key(d.prefix or "", f"{bundle_name}.exit")
    target = S3Target(client, d.bucket, prefix)
    if not target.exists(name) or not target.exists(f"{name}{SIG_SUFFIX}"):
        return None
    source = S3BundleSource(client, d.bucket, prefix)
    with source.open_read(name) as handle:
        text = _read_small(handle.read(MAX_STATEMENT_BYTES + 1), MAX_STATEMENT_BYTES, name)
    with source.open_read(f"{name}{SIG_SUFFIX}") as handle:
        sig = _read_small(handle.read(MAX_SIGNATURE_BYTES + 1), MAX_SIGNATURE_BYTES, name)
    return text, sig.decode("utf-8", "replace")


def drop_signed(
    playbook: Playbook,
    bundle_name: str,
    delivery: DeliveryRecord,
    statement: bytes,
    signature: str,
    *,
    s3: S3Client | None = None,
) -> list[str]:
    """Put the pair beside the delivery as `acceptance.txt` + `.sig`; the locations written.

    Two writes: a flow that reads between them (a new signature beside an
    older statement) records that pair as rejected and takes the complete
    pair, a new answer, at its next look.
    """
    written = deliver_beside_bundle(
        playbook, bundle_name, delivery, {f"{DROP_NAME}{SIG_SUFFIX}": signature}, s3=s3
    )
    written += deliver_beside_bundle(playbook, bundle_name, delivery, {DROP_NAME: statement}, s3=s3)
    return written
