"""`handover state move CONTRACT` on a real PostgreSQL: the folder's contract, once, chain whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from handover.checklist.local_store import LocalStore
from handover.checklist.store import ChecklistStore
from handover.state.home import handover_home
from handover.state.postgres import PostgresStore

pytestmark = pytest.mark.integration

C = "acme-infogerance"
TEMPLATE = [{"id": f"item-{n}", "title": f"Item {n}", "owner": "provider"} for n in range(3)]


def _cli(*args: str) -> tuple[int, str]:
    from handover.cli import _register, app

    _register()
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / ".handover"))
    monkeypatch.delenv("HANDOVER_STATE_URL", raising=False)
    return handover_home()


def test_a_folder_contract_moves_once_and_the_workers_read_it(
    home: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = ChecklistStore(state=LocalStore(home / "contracts"))
    folder.open(C, "takeover", TEMPLATE)
    folder.start(C, "takeover", "item-0", "ops")
    folder.complete(C, "takeover", "item-0", "ops")
    before = folder.audit_log(C).entries()

    monkeypatch.setenv("HANDOVER_STATE_URL", pg_url)
    code, out = _cli("state", "move", C)
    assert code == 0, out
    assert f"moved {C} into postgresql+psycopg://" in out and "***" in out
    assert len(before) == 3  # opened, started, done
    assert f"{len(before)} audit entries, 1 checklists (takeover)" in out.replace("\n", " ")
    assert pg_url.split(":")[2].split("@")[0] not in out  # the role's password never shown

    database = ChecklistStore(state=PostgresStore(pg_url))
    assert database.audit_log(C).entries() == before  # verbatim: the chain goes on
    database.start(C, "takeover", "item-1", "ops")
    assert database.audit_log(C).verify() == []

    code, out = _cli("state", "move", C)  # a second copy would fork the chain
    assert code != 0 and "already holds contract" in out, out


def test_usage_errors_exit_2(home: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = _cli("state", "move", C)
    assert code == 2 and "HANDOVER_STATE_URL must name the team's database" in out, out
    monkeypatch.setenv("HANDOVER_STATE_URL", pg_url)
    code, out = _cli("state", "move", "Not An Id")
    assert code == 2 and "is not a contract id" in out, out
    code, out = _cli("state", "move", "nobody-here")
    assert code == 2 and "no such contract folder" in out, out
