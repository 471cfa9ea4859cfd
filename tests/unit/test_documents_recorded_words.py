"""Findings the core records in English, shown in a French document's words (#15 item 1).

The reasons come from the real producers (`handover.operations.availability`,
`handover.estate.eol`), so a wording changed there and not here shows up as
English in the French rendering, and fails.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from handover.estate.eol import eol_flags
from handover.estate.health_checks import HealthSample
from handover.estate.inventory import Package
from handover.i18n import Texts
from handover.i18n.recorded import duration_text, eol_flag_text, unmeasured_reason_text
from handover.operations.availability import CheckRef, check_availability, service_availability

FR = Texts.of("fr", "Europe/Paris")
EN = Texts.of("en", "Europe/Paris")
START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 11, 4, tzinfo=UTC)
CHECK = CheckRef(name="https-www", service="www", interval_s=300)


def _sample(at: datetime) -> HealthSample:
    return HealthSample(
        at=at,
        check="https-www",
        service="www",
        host="web01",
        kind="http",
        ok=True,
        detail="200",
        interval_s=300,
    )


def _reasons() -> list[str]:
    every = [
        START + timedelta(minutes=5 * i) for i in range(int((END - START) / timedelta(minutes=5)))
    ]
    sparse = every[::20]  # a sample every 100 min: under 90% of those expected
    gap = [
        at
        for at in every
        if not START + timedelta(days=1) <= at < START + timedelta(days=1, hours=2, minutes=7)
    ]
    sparse_samples, gap_samples = [_sample(at) for at in sparse], [_sample(at) for at in gap]
    reasons = [
        check_availability(CHECK, sparse_samples, START, END).reason,
        check_availability(CHECK, gap_samples, START, END).reason,
        check_availability(CHECK, [], START, START + timedelta(minutes=4)).reason,
        service_availability([CHECK], sparse_samples, START, END)[0].reason,
    ]
    assert all(reasons), reasons
    return [r for r in reasons if r]


def test_why_a_service_was_not_measured_reads_in_french() -> None:
    reasons = _reasons()
    french = [unmeasured_reason_text(FR, r) for r in reasons]
    assert french[0] == "44 mesures sur 864 attendues (moins de 90\u00a0%)", french
    assert french[1] == "aucune mesure pendant 2 h 15 min (plus de 1 h)", french
    assert french[2] == "la période ne compte aucun temps hors de la fenêtre de maintenance"
    assert french[3] == "https-www: 44 mesures sur 864 attendues (moins de 90\u00a0%)", french
    for text in french:
        assert "sample" not in text and "expected" not in text, text
    assert unmeasured_reason_text(EN, reasons[0]) == ("44 of 864 expected samples (under 90%)")
    assert unmeasured_reason_text(FR, "no sample") == "aucune mesure"
    assert unmeasured_reason_text(FR, "a probe we never heard of") == "a probe we never heard of"


def test_durations_keep_the_minute() -> None:
    assert duration_text(FR, "2 d 3 h 05 min") == "2 j 3 h 5 min"
    assert duration_text(FR, "1 h 20 min") == "1 h 20 min"
    assert duration_text(EN, "45 min") == "45 min"


def test_end_of_life_findings_read_in_french_with_french_dates() -> None:
    old_debian = {"ID": "debian", "VERSION_ID": "9", "PRETTY_NAME": "Debian GNU/Linux 9 (stretch)"}
    ancient = {"ID": "debian", "VERSION_ID": "6", "PRETTY_NAME": "Debian GNU/Linux 6"}
    packages = [Package(name=f"php7.4-{x}", version="7.4.33") for x in "abcdefg"]
    flags = eol_flags(old_debian, packages, date(2026, 12, 4))
    flags += eol_flags(ancient, [], date(2026, 12, 4))
    assert len(flags) == 3, flags
    french = [eol_flag_text(FR, f) for f in flags]
    assert french[0].startswith(
        "système d'exploitation Debian GNU/Linux 9 (stretch) : fin de vie depuis le "
    )
    assert french[0].endswith(" 2022"), french[0]
    assert french[1].startswith("paquets de PHP"), french[1]
    assert "(fin de vie le " in french[1] and french[1].endswith(" (+2 autres)"), french[1]
    assert french[2] == (
        "système d'exploitation Debian GNU/Linux 6 : fin de vie (antérieur à Debian 8)"
    ), french[2]
    for text in french:
        assert "end of life" not in text and "more" not in text, text
    assert eol_flag_text(EN, flags[0]).startswith("operating system Debian GNU/Linux 9 (stretch)")
    assert eol_flag_text(FR, "os: unknown wording") == "os: unknown wording"
