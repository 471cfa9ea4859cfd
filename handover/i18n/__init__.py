"""The documents' language: translated prose and dates in the contract's time zone.

Every document is written for one contract, in `contract.language` and with
its moments in `contract.timezone`. The prose is not in the code: the code
holds English message ids (`texts._("Open points")`), and the French lives
in the gettext catalogue `handover/locale/fr/LC_MESSAGES/handover.po`,
compiled in memory when first used (Babel reads the `.po`; no `.mo` is kept
beside it, so the two can never disagree). A provider rewords any message by
putting a `.po` of its own at `$HANDOVER_HOME/locale/<lang>/LC_MESSAGES/
handover.po`: its messages win, those it lacks come from the packaged one.

A `Texts` is made per document and passed down (the document builder holds
it): no process-wide locale is set, so two contracts in different languages
can be rendered side by side in one process without leaking into each other.
"""

from __future__ import annotations

import gettext
import os
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from importlib import resources
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from handover.clock import as_utc
from handover.errors import UsageError

if TYPE_CHECKING:
    from handover.contract.parties import Contract

Language = Literal["fr", "en"]
DOMAIN = "handover"
LOCALE_FOLDER = "locale"  # under HANDOVER_HOME: a provider's own <lang>/LC_MESSAGES/handover.po
_BABEL_LOCALES = {"fr": "fr_FR", "en": "en_GB"}


def N_(message: str) -> str:
    """Mark a message for the catalogue where it is defined; translate it where it is shown."""
    return message


def packaged_po(language: str) -> Path | None:
    """The packaged catalogue of `language`, or None (English needs none: ids are English)."""
    path = resources.files("handover").joinpath(
        LOCALE_FOLDER, language, "LC_MESSAGES", f"{DOMAIN}.po"
    )
    return Path(str(path)) if path.is_file() else None


def provider_po(language: str) -> Path | None:
    """`$HANDOVER_HOME/locale/<lang>/LC_MESSAGES/handover.po` when the provider put one there.

    Read from the environment without creating the home: rendering a
    document must not make folders.
    """
    home = os.environ.get("HANDOVER_HOME", ".handover") or ".handover"
    path = Path(home) / LOCALE_FOLDER / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    return path if path.is_file() else None


def _compile(path: Path, language: str) -> gettext.GNUTranslations:
    """A `.po` read by Babel and compiled in memory; UsageError in one line when unreadable."""
    try:
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=_BABEL_LOCALES.get(language, language))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the message catalogue ({exc})") from None
    buffer = BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@lru_cache(maxsize=16)
def _translations(
    language: str, packaged: Path | None, override: Path | None, stamp: float
) -> gettext.NullTranslations:
    del stamp  # part of the cache key only: an edited override is read again
    base: gettext.NullTranslations = (
        _compile(packaged, language) if packaged else gettext.NullTranslations()
    )
    if override is None:
        return base
    mine = _compile(override, language)
    mine.add_fallback(base)
    return mine


def translations(language: str) -> gettext.NullTranslations:
    """The catalogue of `language`: the provider's messages over the packaged ones."""
    override = provider_po(language)
    stamp = override.stat().st_mtime if override else 0.0
    return _translations(language, packaged_po(language), override, stamp)


@dataclass(frozen=True)
class Texts:
    """One document's language and time zone: its messages, dates, durations and counts."""

    language: Language
    zone: ZoneInfo
    catalogue: gettext.NullTranslations

    @classmethod
    def of(cls, language: Language = "en", timezone: str = "UTC") -> Texts:
        return cls(language, ZoneInfo(timezone), translations(language))

    @classmethod
    def for_contract(cls, contract: Contract) -> Texts:
        """The contract's language and time zone (`contract.language`, `contract.timezone`)."""
        return cls.of(contract.language, contract.timezone)

    def _(self, message: str, /, **values: object) -> str:
        """`message` in the document's language, its `{placeholders}` filled from `values`."""
        text = self.catalogue.gettext(message)
        return text.format(**values) if values else text

    def n_(self, singular: str, plural: str, count: int, /, **values: object) -> str:
        """The form for `count` (`{n}` is the count): `1 host`, `3 hosts`, `1 hôte`..."""
        text = self.catalogue.ngettext(singular, plural, count)
        return text.format(n=count, **values)

    @property
    def babel_locale(self) -> str:
        return _BABEL_LOCALES.get(self.language, self.language)

    def local(self, value: datetime) -> datetime:
        return as_utc(value).astimezone(self.zone)

    def offset(self, value: datetime) -> str:
        """`UTC+01:00`: the offset of the contract's zone at that moment."""
        raw = self.local(value).strftime("%z")
        return f"UTC{raw[:3]}:{raw[3:]}"

    def date(self, value: date | datetime | None) -> str:
        """`4 décembre 2026` (English: ISO 8601, `2026-12-04`, read the world over).

        A moment is first put in the contract's time zone. The pattern is a
        message (CLDR syntax), so a catalogue chooses how its language writes dates.
        """
        if value is None:
            return "—"
        if isinstance(value, datetime):
            value = self.local(value).date()
        moment = datetime.combine(value, time(12, 0), tzinfo=self.zone)
        return format_datetime(moment, self._("yyyy-MM-dd"), locale=self.babel_locale)

    def datetime(self, value: datetime | None, seconds: bool = False) -> str:
        """`4 décembre 2026 à 14:05 (UTC+01:00)` (English: `2026-12-04 14:05 (UTC+01:00)`).

        Local time in the contract's zone with its offset, so no reader guesses it;
        `seconds` for records where the second matters (the erasure certificate).
        """
        if value is None:
            return "—"
        local = self.local(value)
        pattern = self._("yyyy-MM-dd HH:mm:ss") if seconds else self._("yyyy-MM-dd HH:mm")
        text = format_datetime(local, pattern, locale=self.babel_locale)
        if self.zone.key == "UTC":  # the zone is the reference itself: no offset to state
            return f"{text} UTC"
        return f"{text} ({self.offset(value)})"

    def minutes(self, total: float) -> str:
        """A duration as a reader says it: `45 min`, `1 h 20 min` up to two days, then days."""
        minutes = round(total)
        if minutes < 60:
            return self._("{minutes} min", minutes=minutes)
        hours, rest = divmod(minutes, 60)
        if hours < 48:
            if rest:
                return self._("{hours} h {rest:02d} min", hours=hours, rest=rest)
            return self._("{hours} h", hours=hours)
        days, hours = divmod(hours, 24)
        if hours:
            return self._("{days} d {hours} h", days=days, hours=hours)
        return self._("{days} d", days=days)

    def hours(self, value: float) -> str:
        return self.minutes(value * 60)

    def number(self, value: float, digits: int | None = None) -> str:
        """`99.5` / `99,5`: `digits` decimals, or as few as the value needs (up to 3)."""
        pattern = "0" if digits == 0 else "0." + ("0" * digits if digits else "###")
        return format_decimal(value, format=pattern, locale=self.babel_locale)

    def percent(self, value: float, digits: int | None = None) -> str:
        """`99.50%` / `99,50 %`."""
        return self._("{value}%", value=self.number(value, digits))

    def yes_no(self, value: bool) -> str:
        return self._("yes") if value else self._("no")
