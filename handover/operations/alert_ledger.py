"""When each alert was last sent, so a fact seen every round is told once per interval.

One small JSON object per contract (key -> time sent). `claim` reads it,
keeps the alerts that are due (`handover.operations.alerts.due_alerts`),
records them and writes it back before returning: the health flow and an
operational run that see the same full disk at once send it once. A lost or
damaged ledger only means an alert is sent again, never one missed.

Where the object lives follows the state store:

- the local folder (the default): the file `operational/alerts-sent.json`,
  read and replaced atomically under an exclusive `flock` of its `.lock`;
- PostgreSQL (`HANDOVER_STATE_URL`), whose workers share no disk: the
  contract's store blob `alerts-sent.json`, changed by compare-and-set
  (`update_blob`: read, decide, write if unchanged, decide again on a lost
  race), so of two workers claiming the same alert at once exactly one gets
  it. This worker's file, if any (from before the store was shared), is not
  read: at worst an alert it recorded is sent once more.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

from handover.operations.alerts import Alert, due_alerts
from handover.state.atomic import ensure_private_dir, write_atomic
from handover.state.shared_blob import shared_contract
from handover.state.store import update_blob

__all__ = ["BLOB", "KEEP", "claim", "read_sent"]

KEEP = timedelta(days=90)  # keys not seen for this long are forgotten (the file stays small)
BLOB = "alerts-sent.json"  # the store blob under PostgreSQL (`handover.state.store.BLOB_NAMES`)
RELPATH = "operational/alerts-sent.json"  # the file, relative to the contract's folder


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    ensure_private_dir(path.parent)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _parse(data: bytes | None) -> dict[str, datetime]:
    """A ledger's entries; empty when there is none or it cannot be read."""
    if data is None:
        return {}
    try:
        return {str(k): datetime.fromisoformat(v) for k, v in dict(json.loads(data)).items()}
    except (ValueError, TypeError):
        return {}


def _record(sent: dict[str, datetime], due: list[Alert], now: datetime) -> bytes:
    """The ledger with `due` sent at `now`, keys older than `KEEP` forgotten."""
    for alert in due:
        sent[alert.key] = now
    kept = {k: v.isoformat() for k, v in sent.items() if now - v < KEEP}
    return json.dumps(kept, sort_keys=True).encode()


def read_sent(path: Path) -> dict[str, datetime]:
    """The ledger's entries (under PostgreSQL the store's blob); empty if missing or unreadable."""
    shared = shared_contract(path, RELPATH)
    if shared is not None:
        store, contract = shared
        return _parse(store.read_blob(contract, BLOB))
    try:
        return _parse(path.read_bytes())
    except OSError:
        return {}


def claim(path: Path, alerts: Iterable[Alert], now: datetime, repeat: timedelta) -> list[Alert]:
    """The alerts due now, recorded as sent (the caller emits them next)."""
    wanted = list(alerts)
    if not wanted:
        return []
    shared = shared_contract(path, RELPATH)
    if shared is not None:
        store, contract = shared
        claimed: list[Alert] = []

        def change(data: bytes | None) -> bytes | None:
            # May run again after a lost race: only its result and `claimed` carry out.
            sent = _parse(data)
            claimed[:] = due_alerts(wanted, sent, now, repeat)
            return _record(sent, claimed, now) if claimed else None

        update_blob(store, contract, BLOB, change)
        return claimed
    with _locked(path):
        sent = read_sent(path)
        due = due_alerts(wanted, sent, now, repeat)
        if due:
            write_atomic(path, _record(sent, due, now))
    return due
