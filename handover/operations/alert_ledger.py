"""When each alert was last sent, so a fact seen every round is told once per interval.

One small JSON file per contract (`operational/alerts-sent.json`: key ->
time sent). `claim` reads it under an exclusive `flock`, keeps the alerts
that are due (`handover.operations.alerts.due_alerts`), records them and
replaces the file atomically before returning: the health flow and an
operational run that see the same full disk at once send it once. A lost
or damaged ledger only means an alert is sent again, never one missed.
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

__all__ = ["KEEP", "claim", "read_sent"]

KEEP = timedelta(days=90)  # keys not seen for this long are forgotten (the file stays small)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    ensure_private_dir(path.parent)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_sent(path: Path) -> dict[str, datetime]:
    """The ledger's entries; empty when the file is missing or unreadable."""
    try:
        data = json.loads(path.read_bytes())
        return {str(k): datetime.fromisoformat(v) for k, v in dict(data).items()}
    except (OSError, ValueError, TypeError):
        return {}


def claim(path: Path, alerts: Iterable[Alert], now: datetime, repeat: timedelta) -> list[Alert]:
    """The alerts due now, recorded as sent (the caller emits them next)."""
    wanted = list(alerts)
    if not wanted:
        return []
    with _locked(path):
        sent = read_sent(path)
        due = due_alerts(wanted, sent, now, repeat)
        if due:
            for alert in due:
                sent[alert.key] = now
            kept = {k: v.isoformat() for k, v in sent.items() if now - v < KEEP}
            write_atomic(path, json.dumps(kept, sort_keys=True).encode())
    return due
