"""The state store's pieces that need no database: the URL, the entries, the local store."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from handover.checklist.audit import AuditLog
from handover.checklist.local_store import LocalStore
from handover.checklist.store import ChecklistStore, open_contract_store
from handover.errors import HandoverError, UsageError
from handover.state.chain import GENESIS, canonical_json, entry_hash, next_entry
from handover.state.store import StateConflict, parse_state_url

C = "acme-infogerance"
TEMPLATE = [{"id": "inventory", "title": "Inventory", "clause": "2.1", "owner": "provider"}]


@pytest.mark.parametrize("value", [None, "", "  ", "file:"])
def test_unset_or_file_means_the_local_folder(value: str | None) -> None:
    url = parse_state_url(value)
    assert (url.kind, url.folder, url.url) == ("file", None, None)


def test_a_file_url_names_the_contracts_folder() -> None:
    assert parse_state_url("file:///srv/handover/contracts").folder == Path(
        "/srv/handover/contracts"
    )


@pytest.mark.parametrize(
    "value", ["postgresql://h@db/handover", "postgres://db/x", "postgresql+psycopg://db/x"]
)
def test_postgresql_urls(value: str) -> None:
    url = parse_state_url(value)
    assert (url.kind, url.url) == ("postgresql", value)


@pytest.mark.parametrize(
    ("value", "said"),
    [("mysql://db/x", "unsupported scheme 'mysql'"), ("file://host/x", "file:///path")],
)
def test_other_urls_are_usage_errors(value: str, said: str) -> None:
    with pytest.raises(UsageError, match=said):
        parse_state_url(value)


def test_entries_chain_and_hash_as_the_log_file_writes_them(tmp_path: Path) -> None:
    first = next_entry(None, "a.b", "ops", {"path": tmp_path})
    second = next_entry(first, "c.d", "ops", {"n": 1})
    assert (first["seq"], first["prev"], first["data"]) == (1, GENESIS, {"path": str(tmp_path)})
    assert (second["seq"], second["prev"]) == (2, first["hash"])
    assert second["hash"] == entry_hash(second)
    log = AuditLog(tmp_path / "audit.log")
    log.path.write_bytes(canonical_json(first) + b"\n" + canonical_json(second) + b"\n")
    assert log.verify() == []
    with pytest.raises(ValueError, match="event must not be empty"):
        next_entry(None, "", "ops", {})


def test_the_store_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HANDOVER_STATE_URL", raising=False)
    default = open_contract_store()
    assert isinstance(default, LocalStore) and default.root == tmp_path / "home" / "contracts"
    monkeypatch.setenv("HANDOVER_STATE_URL", f"file://{tmp_path}/shared")
    store = ChecklistStore()
    assert isinstance(store.state, LocalStore) and store.root == tmp_path / "shared"
    store.open(C, "takeover", TEMPLATE)
    assert (tmp_path / "shared" / C / "checklists" / "takeover.json").is_file()
    # An explicit folder is read as that folder, whatever the environment says.
    assert ChecklistStore(tmp_path / "other").state.where == str(tmp_path / "other")


def test_an_unreachable_database_is_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HANDOVER_STATE_URL", f"postgresql://ops:s3cret-pw@127.0.0.1:{port}/x")
    with pytest.raises(HandoverError, match="cannot connect") as caught:
        ChecklistStore()
    assert "s3cret-pw" not in str(caught.value) and "***" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_local_compare_and_set(tmp_path: Path) -> None:
    state = LocalStore(tmp_path)
    store = ChecklistStore(state=state)
    store.open(C, "takeover", TEMPLATE)
    stored = state.read_checklist(C, "takeover")
    assert stored is not None and json.loads(stored)["version"] == 1
    log_before = store.audit_log(C).path.read_bytes()
    with pytest.raises(StateConflict, match="at version 1, this change was made on version 0"):
        state.commit_checklist(C, "takeover", 0, b"{}", [("x.y", "ops", {})])
    assert store.audit_log(C).path.read_bytes() == log_before
    assert state.pending(C, "takeover") is None
    entries = state.commit_checklist(C, "takeover", 1, stored, [("x.y", "ops", {"k": 1})])
    assert [e["seq"] for e in entries] == [2]
    assert state.checklist_names(C) == ["takeover"]
