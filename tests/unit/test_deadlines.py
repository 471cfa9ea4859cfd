"""The exit calendar: month ends clamped, each step after the previous one, the transition's
legal basis, what is due on a given day, and the JSON round trip the flow relies on."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from handover.contract.deadlines import LEGACY_BASIS, Due, ExitDeadlines, due, exit_deadlines
from handover.contract.playbook import Playbook
from handover.contract.reversibility import Deadlines
from tests.unit.documents_fixtures import load_test_playbook


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    return load_test_playbook(tmp_path_factory)


def test_exit_deadlines_clamp_month_ends(playbook: Playbook) -> None:
    deadlines = playbook.reversibility.deadlines
    result = exit_deadlines(deadlines, date(2028, 12, 31))
    assert result.switching_starts == date(2029, 2, 28)
    result = exit_deadlines(deadlines.model_copy(update={"notice_months": 2}), date(2027, 12, 31))
    assert result.switching_starts == date(2028, 2, 29)
    assert result.erasure_by == result.retrieval_ends + timedelta(days=deadlines.erasure_days)


def _extended(days: int, basis: str, **extra: str) -> Deadlines:
    extension = {"basis": basis, "justification": "40 TB over a 1 Gbit/s link", **extra}
    return Deadlines.model_validate({"transition_days": days, "transition_extension": extension})


def test_default_calendar_names_each_step_and_its_basis() -> None:
    dates = exit_deadlines(Deadlines(), date(2026, 3, 1))
    assert dates.switching_starts == date(2026, 5, 1)
    assert dates.switch_over == date(2026, 5, 31)
    assert dates.erasure_earliest == date(2026, 6, 30)
    assert dates.erasure_by == date(2026, 7, 30)
    # the first calendar's names still read the same dates
    assert dates.transition_ends == dates.switch_over
    assert dates.retrieval_ends == dates.erasure_earliest
    assert dates.transition_basis.startswith("Data Act art. 25(2): transitional period of 30 days")


def test_extended_transition_moves_every_later_date_and_states_its_basis() -> None:
    dates = exit_deadlines(_extended(200, "data-act-art-25-4"), date(2026, 3, 1))
    assert dates.switch_over == date(2026, 5, 1) + timedelta(days=200)
    assert dates.erasure_earliest == dates.switch_over + timedelta(days=30)
    assert "Data Act art. 25(4)" in dates.transition_basis
    assert "200 days" in dates.transition_basis
    assert "40 TB over a 1 Gbit/s link" in dates.transition_basis
    tuilage = exit_deadlines(
        _extended(90, "contractual-tuilage", clause="Art. 12.2 Tuilage"), date(2026, 3, 1)
    )
    assert tuilage.transition_basis.startswith(
        "Contractual reversibility phase with overlap (tuilage), Art. 12.2 Tuilage: 90 days"
    )


def test_calendar_round_trips_through_json() -> None:
    dates = exit_deadlines(
        _extended(60, "contractual-tuilage", clause="Art. 12.2"), date(2027, 1, 31)
    )
    dumped = dates.model_dump(mode="json")
    assert dumped["switch_over"] == "2027-05-30"
    assert dumped["transition_ends"] == "2027-05-30"  # readers of the old name keep working
    assert ExitDeadlines.model_validate(dumped) == dates
    assert ExitDeadlines.model_validate_json(dates.model_dump_json()) == dates
    assert ExitDeadlines.model_validate(json.loads(json.dumps(dumped))) == dates


def test_calendar_nested_in_a_persisted_state_round_trips() -> None:
    class State(BaseModel):
        model_config = ConfigDict(extra="forbid")
        deadlines: ExitDeadlines | None = None

    state = State(deadlines=exit_deadlines(Deadlines(), date(2026, 3, 1)))
    text = state.model_dump_json(exclude_none=True)
    assert State.model_validate_json(text) == state


def test_recorded_calendar_that_disagrees_with_itself_is_refused() -> None:
    dumped = exit_deadlines(Deadlines(), date(2026, 3, 1)).model_dump(mode="json")
    with pytest.raises(ValidationError, match=r"transition_ends \(2026-06-01\) disagrees"):
        ExitDeadlines.model_validate({**dumped, "transition_ends": "2026-06-01"})
    with pytest.raises(ValidationError, match="erasure_by 2026-06-01 is before erasure_earliest"):
        ExitDeadlines.model_validate(
            {**dumped, "erasure_by": "2026-06-01", "retrieval_ends": dumped["erasure_earliest"]}
        )
    with pytest.raises(ValidationError, match="extra"):
        ExitDeadlines.model_validate({**dumped, "erasure_after": "2026-06-01"})


def test_calendar_recorded_before_switch_over_existed_is_read_back() -> None:
    old = {
        "notice_date": "2026-03-01",
        "switching_starts": "2026-05-01",
        "transition_ends": "2026-05-31",
        "retrieval_ends": "2026-06-30",
        "erasure_by": "2026-07-30",
    }
    dates = ExitDeadlines.model_validate(old)
    assert dates.switch_over == date(2026, 5, 31)
    assert dates.erasure_earliest == date(2026, 6, 30)
    assert dates.transition_basis == LEGACY_BASIS


def test_export_waits_for_the_switch_over() -> None:
    dates = exit_deadlines(Deadlines(), date(2026, 3, 1))
    assert not dates.export_due(date(2026, 5, 30))
    assert dates.export_due(date(2026, 5, 31))
    assert dates.export_due(date(2026, 6, 15))


def test_erasure_waits_for_retrieval_unless_early_erasure_is_asked() -> None:
    dates = exit_deadlines(Deadlines(), date(2026, 3, 1))
    assert not dates.erasure_due(date(2026, 6, 29), early_requested=False)
    assert dates.erasure_due(date(2026, 6, 29), early_requested=True)
    assert dates.erasure_due(date(2026, 6, 30), early_requested=False)
    assert not dates.erasure_overdue(date(2026, 7, 30))
    assert dates.erasure_overdue(date(2026, 7, 31))


def test_due_summarises_one_day() -> None:
    dates = exit_deadlines(Deadlines(), date(2026, 3, 1))
    assert due(dates, date(2026, 6, 1)) == Due(
        today=date(2026, 6, 1), export=True, erasure=False, erasure_overdue=False
    )
    assert due(dates, date(2026, 6, 1), early_requested=True).erasure
    late = due(dates, date(2026, 8, 1))
    assert late.erasure and late.erasure_overdue
    assert Due.model_validate(late.model_dump(mode="json")) == late
