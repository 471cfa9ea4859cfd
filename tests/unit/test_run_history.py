"""The run history's rules: tags, what is kept of parameters and logs, the table's rows;
and the settings that make the history last (the server's events retention)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from handover.operations.run_history import (
    HISTORY_COLUMNS,
    PARAMETER_MAX_CHARS,
    FlowRunEntry,
    RunHistory,
    TaskRunEntry,
    duration_text,
    history_rows,
    merged_tags,
    run_tags,
    safe_message,
    safe_parameters,
    tag_value,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_run_tags_name_contract_phase_and_trigger() -> None:
    assert run_tags("acme", "takeover") == ["contract:acme", "phase:takeover"]
    assert run_tags("acme", "operational", "schedule") == [
        "contract:acme",
        "phase:operational",
        "trigger:schedule",
    ]
    assert run_tags(None, "lifecycle") == ["phase:lifecycle"]


def test_merged_tags_replace_our_kinds_and_keep_the_others() -> None:
    inherited = ["auto-scheduled", "contract:acme", "phase:lifecycle", "team:ops"]
    merged = merged_tags(inherited, run_tags("acme", "takeover", "subflow"))
    assert merged == [
        "auto-scheduled",
        "team:ops",
        "contract:acme",
        "phase:takeover",
        "trigger:subflow",
    ]
    # Tagging twice changes nothing.
    assert merged_tags(merged, run_tags("acme", "takeover", "subflow")) == merged
    # Without a contract (unreadable playbook), an inherited contract tag stays.
    assert merged_tags(["contract:acme"], run_tags(None, "takeover")) == [
        "contract:acme",
        "phase:takeover",
    ]


def test_tag_value_reads_the_first_tag_of_a_kind() -> None:
    assert tag_value(["x", "phase:exit", "phase:y"], "phase:") == "exit"
    assert tag_value(["x"], "phase:") is None


def test_parameters_keep_short_plain_values_and_name_the_dropped_ones() -> None:
    kept, dropped = safe_parameters(
        {
            "playbook_path": "/srv/acme.yaml",
            "fresh": True,
            "count": 3,
            "notice_date": None,
            "nested": {"a": 1},
            "long": "x" * (PARAMETER_MAX_CHARS + 1),
            "key": "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS",
        }
    )
    assert kept == {
        "count": 3,
        "fresh": True,
        "notice_date": None,
        "playbook_path": "/srv/acme.yaml",
    }
    assert dropped == ["key", "long", "nested"]


def test_log_messages_that_look_secret_are_withheld_by_kind() -> None:
    assert safe_message("backup of www done") == "backup of www done"
    pem = "oops -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n"
    withheld = safe_message(pem)
    assert "b3BlbnNzaC1rZXk" not in withheld and "PRIVATE KEY-----" not in withheld
    assert "a PEM private key" in withheld


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (None, "-"),
        (timedelta(seconds=4.25), "4.2s"),
        (timedelta(minutes=2, seconds=5), "2m 05s"),
        (timedelta(hours=1, minutes=2, seconds=3), "1h 02m 03s"),
    ],
)
def test_duration_text(delta: timedelta | None, text: str) -> None:
    assert duration_text(delta) == text


def _task(name: str, state: str) -> TaskRunEntry:
    return TaskRunEntry(
        id=name, name=name, state_type=state, state_name=state.title(), start_time=T0, end_time=T0
    )


def _run(name: str, **changes: object) -> FlowRunEntry:
    values: dict[str, object] = {
        "id": name,
        "name": name,
        "flow_name": "takeover",
        "tags": ["contract:acme", "phase:takeover"],
        "phase": "takeover",
        "state_type": "COMPLETED",
        "state_name": "Completed",
        "start_time": T0,
        "end_time": T0 + timedelta(minutes=2, seconds=5),
        "parameters": {},
        "task_runs": [],
        "logs": [],
    }
    values.update(changes)
    return FlowRunEntry.model_validate(values)


def test_history_rows_show_phase_state_duration_and_failed_tasks() -> None:
    failed = [_task(f"inventory of web0{i}", "FAILED") for i in range(1, 6)]
    history = RunHistory(
        contract="acme",
        generated_at=T0,
        selected_by="contract:acme",
        runs=[
            _run("takeover-acme-1", task_runs=[_task("ok", "COMPLETED"), *failed]),
            _run(
                "reversibility-acme-2",
                phase="reversibility",
                state_type="RUNNING",
                state_name="in progress (this exit)",
                end_time=None,
                task_runs_truncated=True,
                task_runs=[_task("ok", "COMPLETED")],
            ),
        ],
        artifacts=[],
    )
    rows = history_rows(history)
    assert all(len(row) == len(HISTORY_COLUMNS) for row in rows)
    assert rows[0] == (
        "takeover-acme-1",
        "takeover",
        "Completed",
        "2026-03-01 09:00:00",
        "2m 05s",
        "6",
        "inventory of web01, inventory of web02, inventory of web03 (+2)",
    )
    assert rows[1][1:] == (
        "reversibility",
        "in progress (this exit)",
        "2026-03-01 09:00:00",
        "-",
        "1+",
        "-",
    )


def test_the_history_round_trips_as_json() -> None:
    history = RunHistory(
        contract="acme",
        generated_at=T0,
        selected_by="contract:acme",
        runs=[_run("takeover-acme-1", parameters={"playbook_path": "/p.yaml", "fresh": False})],
        artifacts=[],
    )
    assert RunHistory.model_validate_json(history.model_dump_json()) == history


def test_the_started_server_keeps_events_for_years(monkeypatch: pytest.MonkeyPatch) -> None:
    from flows import server

    for name in server.EVENTS_RETENTION_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    env = server._server_environment(4321)
    assert env["PREFECT_SERVER_EVENTS_RETENTION_PERIOD"] == "P3650D"
    # Prefect reads it as ten years (ISO 8601 duration), not its 7-day default.
    from pydantic import TypeAdapter

    assert TypeAdapter(timedelta).validate_python(
        env["PREFECT_SERVER_EVENTS_RETENTION_PERIOD"]
    ) == timedelta(days=3650)


@pytest.mark.parametrize(
    "name", ["PREFECT_SERVER_EVENTS_RETENTION_PERIOD", "PREFECT_EVENTS_RETENTION_PERIOD"]
)
def test_a_retention_the_user_set_wins(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    from flows import server

    for other in server.EVENTS_RETENTION_SETTINGS:
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(name, "P30D")
    env = server._server_environment(4321)
    assert env[name] == "P30D"
    if name != "PREFECT_SERVER_EVENTS_RETENTION_PERIOD":
        assert "PREFECT_SERVER_EVENTS_RETENTION_PERIOD" not in env


def test_served_deployments_carry_their_phase_and_schedules_their_contract() -> None:
    from flows.schedules import task_deployment
    from flows.serving import phase_deployments
    from handover.operations.schedules import TaskSchedule

    tags = {d.name: d.tags for d in phase_deployments()}
    assert tags == {
        "takeover": ["phase:takeover"],
        "implementation": ["phase:implementation"],
        "operational": ["phase:operational"],
        "reversibility": ["phase:reversibility"],
        "lifecycle": ["phase:lifecycle"],
        "patching": ["phase:operational"],
    }
    backups = TaskSchedule(task="backups", cron="0 2 * * *", timezone="UTC", items=("backups",))
    scheduled = task_deployment("acme", "/p/acme.yaml", backups)
    assert scheduled.tags == ["contract:acme", "phase:operational"]
