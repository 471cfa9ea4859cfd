"""Ticketing exports read into tickets: CSV with the playbook's columns, GLPI's API JSON."""

from __future__ import annotations

import string
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handover.contract.operations import CsvColumns, IncidentCsv
from handover.errors import UsageError
from handover.operations.incident_import import (
    ImportSettings,
    json_list,
    read_csv,
    read_export,
    read_glpi,
)

DATA = Path(__file__).parents[1] / "data" / "incidents"
PARIS = ZoneInfo("Europe/Paris")
CSV = IncidentCsv(
    columns=CsvColumns(
        id="Numéro",
        opened="Ouverture",
        acknowledged="Prise en compte",
        resolved="Résolution",
        severity="Priorité",
        title="Titre",
    ),
    delimiter=";",
    datetime_format="%d/%m/%Y %H:%M",
    severities={"Très haute": "P1", "Haute": "P2"},
)
SETTINGS = ImportSettings(zone=PARIS, levels=("P1", "P2", "P4"), csv=CSV)


def test_csv_rows_are_read_in_the_contract_zone_with_one_located_line_per_bad_row() -> None:
    path = DATA / "tickets.csv"
    read = read_csv(path, SETTINGS)
    slow, vpn = read.tickets
    assert (slow.id, slow.severity, slow.title) == ("2026-17", "P2", "Serveur de fichiers lent")
    assert slow.opened_at.astimezone(UTC) == datetime(2026, 3, 2, 8, 15, tzinfo=UTC)  # CET
    assert (vpn.severity, vpn.resolved_at) == ("P1", None)
    assert vpn.acknowledged_at == datetime(2026, 3, 9, 8, 20, tzinfo=PARIS)
    assert read.problems == [
        f"{path}:4: opened (Ouverture) '32/03/2026 09:00' is not a date (%d/%m/%Y %H:%M)",
        f"{path}:5: severity 'Urgentissime' is not one of P1, P2, P4 "
        "(map it in operations.incidents.csv.severities)",
        f"{path}:6: no ticket id in column 'Numéro'",
    ]


def test_a_csv_without_the_declared_columns_or_without_columns_declared(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("ID,Title\n1,x\n")
    with pytest.raises(UsageError, match=r"export\.csv:1: no column 'Numéro'"):
        read_csv(path, SETTINGS)
    with pytest.raises(UsageError, match=r"declares no operations\.incidents\.csv columns"):
        read_csv(path, ImportSettings())


def test_a_duplicate_ticket_and_times_out_of_order_are_located(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "Numéro;Titre;Priorité;Ouverture;Prise en compte;Résolution\n"
        "7;a;Haute;02/03/2026 09:15;02/03/2026 09:00;\n"
        "8;b;Haute;02/03/2026 09:15;;\n"
        "8;c;Haute;02/03/2026 09:15;;\n"
    )
    read = read_csv(path, SETTINGS)
    assert [t.id for t in read.tickets] == ["8"]
    assert read.problems[0].startswith(f"{path}:2: acknowledged at 2026-03-02T09:00:00+01:00")
    assert read.problems[1] == f"{path}:4: ticket 8 already on line 3"


def test_glpi_tickets_take_their_dates_and_priorities_and_skip_deleted_ones() -> None:
    path = DATA / "glpi_tickets.json"
    read = read_glpi(path, SETTINGS)
    mail, printer = read.tickets
    assert (mail.id, mail.source_id, mail.severity) == ("GLPI-1041", "1041", "P1")
    assert mail.acknowledged_at == datetime(2026, 3, 2, 9, 40, tzinfo=PARIS)  # the date, not delay
    assert mail.resolved_at == datetime(2026, 3, 2, 11, 45, tzinfo=PARIS)
    # no takeintoaccountdate: opening + takeintoaccount_delay_stat (1800 s)
    assert printer.acknowledged_at == datetime(2026, 3, 6, 18, 20, tzinfo=PARIS)
    assert (printer.severity, printer.resolved_at) == ("P2", None)
    assert read.problems == [
        f"{path}:46: resolved at 2026-03-08T10:00:00+01:00, before it was opened",
        f"{path}:54: severity '9' is not one of P1, P2, P4 "
        "(map it in operations.incidents.glpi_priorities)",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"data": []}', r":1: expected a JSON list of tickets"),
        ('[{"id": 1},\n {"id": 2', r":2: not JSON"),
        ('[{"id": 1} {"id": 2}]', r":1: expected ',' or '\]'"),
    ],
)
def test_a_file_that_is_not_a_json_list_is_one_usage_error(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "tickets.json"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        read_export(path, "glpi", SETTINGS)


def test_the_older_incidents_json_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "incidents.json"
    path.write_text(
        '[{"id": "a", "severity": "P1", "summary": "s", "opened_at": "2026-02-01T10:00:00Z",'
        '  "responded_at": "2026-02-01T10:20:00Z"},\n {"id": "b", "severity": "P3"}]'
    )
    read = read_export(path, "json", SETTINGS)
    assert [t.id for t in read.tickets] == ["a"]
    assert read.problems[0].startswith(f"{path}:2: severity 'P3' is not one of")


CELL = st.text(alphabet=string.printable + "éà;\"'", max_size=20)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(CELL, min_size=0, max_size=8), max_size=6))
def test_hostile_csv_rows_give_tickets_or_located_problems_never_a_crash(
    tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]]
) -> None:
    path = tmp_path_factory.mktemp("csv") / "export.csv"
    header = "Numéro;Titre;Priorité;Ouverture;Prise en compte;Résolution"
    path.write_text(header + "\n" + "\n".join(";".join(r) for r in rows), encoding="utf-8")
    try:
        read = read_export(path, "csv", SETTINGS)
    except UsageError as error:
        assert str(path) in str(error)
        return
    assert all(p.startswith(f"{path}:") for p in read.problems)
    assert all(t.opened_at.tzinfo is not None for t in read.tickets)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200))
def test_hostile_json_is_a_located_usage_error_or_a_list(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    path = tmp_path_factory.mktemp("json") / "tickets.json"
    path.write_text(text, encoding="utf-8")
    try:
        read = read_export(path, "glpi", SETTINGS)
    except UsageError as error:
        assert str(error).startswith(f"{path}")
        return
    assert all(p.startswith(f"{path}:") for p in read.problems)
    assert len(list(json_list(path))) >= len(read.tickets)
