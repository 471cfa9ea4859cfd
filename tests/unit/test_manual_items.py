"""The manual-item pause form: which answers can be recorded, and the pause keys."""

from __future__ import annotations

import pytest

from flows.manual_items import ManualItemAnswer, pause_key, problem, wait_seconds


@pytest.mark.parametrize(
    ("outcome", "by", "details", "expected"),
    [
        ("later", "", "", None),
        ("done", "Chair", "minutes PV-1", None),
        ("done", "", "minutes PV-1", "say who answers"),
        ("done", "Chair", "  ", "say what proves it"),
        ("failed", "Chair", "", "say why"),
        ("waived", "Chair", "not in this contract", None),
    ],
)
def test_an_answer_needs_who_and_what_proves_it_or_why(
    outcome: str, by: str, details: str, expected: str | None
) -> None:
    answer = ManualItemAnswer.model_validate({"outcome": outcome, "by": by, "details": details})
    assert problem(answer) == expected


def test_pause_keys_are_unique_per_attempt_and_the_wait_is_configurable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert [pause_key("kick-off", n) for n in (1, 2)] == ["manual-kick-off", "manual-kick-off-2"]
    monkeypatch.setenv("HANDOVER_MANUAL_ITEM_WAIT_SECONDS", "120")
    assert wait_seconds() == 120
    monkeypatch.setenv("HANDOVER_MANUAL_ITEM_WAIT_SECONDS", "soon")
    assert wait_seconds() == 3600
