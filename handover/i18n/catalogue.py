"""The message ids the code uses, and the packaged catalogues kept in step with them.

`python -m handover.i18n.catalogue` extracts every `_()`, `n_()` and `N_()`
message from the modules that write documents and merges them into each
packaged `.po` (new ids get an empty translation, ids no longer used are
dropped); a translator then fills the empty `msgstr`. A unit test fails
while any id lacks its translation, so an untranslated sentence cannot ship.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po, write_po

from handover.i18n import DOMAIN, LOCALE_FOLDER

PACKAGE = Path(__file__).resolve().parent.parent
#: The modules whose prose is translated (paths under the `handover` package).
SOURCES = (
    "i18n/__init__.py",
    "i18n/words.py",
    "i18n/recorded.py",
    "documents",
    "exit/erasure_certificate.py",
    "exit/acceptance.py",
)
KEYWORDS = {"_": None, "n_": (1, 2), "N_": None}
LANGUAGES = ("fr",)


def source_files() -> Iterator[Path]:
    for name in SOURCES:
        path = PACKAGE / name
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def extracted() -> Catalog:
    """Every message id the sources use, with where it is used."""
    catalog = Catalog(domain=DOMAIN)
    for path in source_files():
        for line, message, _comments, _context in extract_from_file(
            "python", str(path), keywords=KEYWORDS
        ):
            catalog.add(message, locations=[(str(path.relative_to(PACKAGE)), line)])
    return catalog


def po_path(language: str) -> Path:
    return PACKAGE / LOCALE_FOLDER / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def update(language: str) -> Path:
    """Merge the extracted ids into the packaged `.po` of `language` (kept translations stay)."""
    path = po_path(language)
    if path.is_file():
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=language)
    else:
        catalog = Catalog(locale=language, domain=DOMAIN)
    catalog.update(extracted(), no_fuzzy_matching=True)
    catalog.obsolete.clear()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(handle, catalog, width=100, omit_header=False, sort_output=False)
    return path


if __name__ == "__main__":
    for lang in sys.argv[1:] or LANGUAGES:
        print(update(lang))
