"""The exit calendar: month ends clamped, each step after the previous one."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from handover.contract.deadlines import exit_deadlines
from handover.contract.playbook import Playbook
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
