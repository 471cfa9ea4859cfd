"""The client's guide (README.txt of a bundle): language, restores, dates, templates, schema."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from handover.bundle.readme import (
    COMMAND_PREFIX,
    DATABASE_PREFIX,
    MACOS_PREFIX,
    WINDOWS_PREFIX,
    ReadmeContact,
    ReadmeFacts,
    VolumeFacts,
    dump_engine,
    load_catalogue,
    render_readme,
)
from handover.contract.parties import Contract
from handover.errors import UsageError

CREATED = "2026-12-04T11:00:00+00:00"
VOLUMES = [
    VolumeFacts(file="volumes/0001-web01-www.tar.age", number=1, member_files=["www/a.html"]),
    VolumeFacts(file="volumes/0002-db01-erp.tar.age", number=2, member_files=["erp.dump"]),
    VolumeFacts(file="volumes/0003-db02-shop.tar.age", number=3, member_files=["shop.sql.gz"]),
    VolumeFacts(file="volumes/0004-db03-crm.tar.age", number=4, member_files=["crm.sql"]),
]

# Words that are English and never French, so that a French guide holding one of them
# outside a command, a file name or quoted tool output has English prose in it.
# Deliberately short: words French shares ("on", "a", "date", "page", "service") are out.
ENGLISH_WORDS = frozenset(
    re.findall(
        r"\w+",
        "the and your you with this that from every must only before after which check folder "
        "password passwords download sign send these there what will should into when where "
        "first then each files file database restore deadline deadlines whom call key keys "
        "data open type run here",
    )
)
# Lines that are not prose: commands (every prompt), file listings, tool output quoted.
_NOT_PROSE = (COMMAND_PREFIX, MACOS_PREFIX, WINDOWS_PREFIX, DATABASE_PREFIX, "      ")


def facts(**changes: Any) -> ReadmeFacts:
    base: dict[str, Any] = {
        "language": "fr",
        "timezone": "Europe/Paris",
        "bundle_name": "acme-exit",
        "provider": "Infogérant SA",
        "contacts": [
            ReadmeContact(name="Jeanne Martin", role="Chef de projet", email="j@infog.fr"),
            ReadmeContact(name="Astreinte", level=1, phone="+33 1 23 45 67 89"),
        ],
        "retrieval_ends": date(2027, 3, 1),
        "erasure_by": date(2027, 7, 31),
        "credentials": True,
        "delivery": "local",
        "dump_engines": {2: "postgresql", 4: "mysql"},
    }
    return ReadmeFacts(**{**base, **changes})


def english_lines(text: str) -> list[str]:
    """Prose lines holding a word of ENGLISH_WORDS.

    Left out as not prose: command lines (any prompt), the volume and folder
    lists, the quoted ssh-keygen output (`Good "..." signature for`), paths,
    file names, `-options`, `tool_names` and words in CAPITALS (SQL, placeholders).
    """
    found = []
    for line in text.splitlines():
        if line.startswith(_NOT_PROSE) or line.lstrip().startswith(("volumes/", "restored/")):
            continue
        # not prose: quoted output, `code`, paths, file names, -options and tool_names, CAPITALS
        prose = re.sub(
            r'Good "[^"]*" signature for|`[^`]*`|\S+[/\\]\S*|\S+\.\w+|\S*[-_]\S*|\b[A-Z]{2,}\b',
            " ",
            line,
        )
        words = set(re.findall(r"[^\W\d_]+", prose.lower()))
        if words & ENGLISH_WORDS:
            found.append(line)
    return found


def test_a_french_contract_gets_a_guide_without_english_prose() -> None:
    text = render_readme(VOLUMES, CREATED, "SHA256:abc", "Infogérance ACME", facts())
    assert english_lines(text) == []
    assert "Contrôler que le téléchargement est complet" in text
    # the heuristic does find English: the same guide in English trips it on many lines
    english = render_readme(VOLUMES, CREATED, "SHA256:abc", "", facts(language="en"))
    assert len(english_lines(english)) > 40


def test_the_guide_gives_commands_for_linux_macos_and_windows() -> None:
    text = render_readme(VOLUMES, CREATED, "SHA256:abc", "", facts(language="en"))
    assert f"{COMMAND_PREFIX}sha256sum -c SHA256SUMS" in text
    assert f"{MACOS_PREFIX}shasum -a 256 -c SHA256SUMS" in text
    assert f"{WINDOWS_PREFIX}Get-Content -Encoding UTF8 SHA256SUMS" in text
    assert "Get-FileHash -Algorithm SHA256" in text
    assert f"{WINDOWS_PREFIX}ssh-keygen -lf provider.pub" in text
    assert 'cmd /c "ssh-keygen -Y verify' in text
    assert (
        f'{WINDOWS_PREFIX}cmd /c "age -d -i key.txt volumes\\0002-db01-erp.tar.age '
        '| tar -x -C restored\\0002-db01-erp"' in text
    )
    assert "age-vX.Y.Z-windows-amd64.zip" in text


def test_restores_follow_what_the_bundle_holds() -> None:
    text = render_readme(VOLUMES, CREATED, "SHA256:abc", "", facts(language="en"))
    assert (
        f"{DATABASE_PREFIX}pg_restore -h DBHOST -U DBUSER -d NEWDB --no-owner --no-acl "
        "restored/0002-db01-erp/*.dump" in text
    )
    # engine unknown for the .sql.gz: both clients are shown
    assert f"{DATABASE_PREFIX}gunzip -c restored/0003-db02-shop/*.sql.gz | psql" in text
    assert f"{DATABASE_PREFIX}gunzip -c restored/0003-db02-shop/*.sql.gz | mysql" in text
    assert (
        f"{DATABASE_PREFIX}mysql -h DBHOST -u DBUSER -p NEWDB < restored/0004-db03-crm/*.sql"
        in text
    )
    assert f"{DATABASE_PREFIX}rsync -a --dry-run restored/0001-web01-www/ DESTINATION/" in text
    files_only = render_readme(VOLUMES[:1], CREATED, "SHA256:abc", "", facts(language="en"))
    assert "pg_restore" not in files_only and "mysql" not in files_only
    assert "rsync -a --dry-run" in files_only
    # no client file name: dumps are reached through their volume's folder
    for name in ("erp.dump", "shop.sql.gz", "crm.sql", "a.html"):
        assert name not in text


def test_dump_engines_come_from_the_dump_command() -> None:
    assert dump_engine("pg_dump -Fc erp") == "postgresql"
    assert dump_engine("/usr/bin/pg_dumpall") == "postgresql"
    assert dump_engine("PGHOST=db sudo -u postgres pg_dump erp") == "postgresql"
    assert dump_engine("mysqldump --single-transaction shop") == "mysql"
    assert dump_engine("mariadb-dump shop") == "mysql"
    assert dump_engine("cat /var/backups/x.sql") is None


def test_deadlines_are_in_the_contract_zone_with_their_offset() -> None:
    text = render_readme(VOLUMES, CREATED, "SHA256:abc", "", facts())
    assert "2027-03-01 00:00 (Europe/Paris, UTC+01:00)" in text  # winter
    assert "2027-07-31 23:59 (Europe/Paris, UTC+02:00)" in text  # summer time
    assert "Scellé le 2026-12-04 12:00 (Europe/Paris, UTC+01:00)" in text
    other = render_readme(
        VOLUMES, CREATED, "SHA256:abc", "", facts(timezone="America/Montreal", language="en")
    )
    assert "2027-03-01 00:00 (America/Montreal, UTC-05:00)" in other
    none = render_readme(VOLUMES, CREATED, "x", "", facts(retrieval_ends=None, language="en"))
    assert "are in your contract" in none and "2027-03-01" not in none


def test_credentials_acceptance_and_contacts() -> None:
    text = render_readme(VOLUMES, CREATED, "SHA256:abc", "", facts(language="en"))
    assert (
        f"{COMMAND_PREFIX}age -d -i key.txt ../acme-exit.exit/credentials-password.txt.age" in text
    )
    assert "Change every one of them" in text
    assert (
        f"{COMMAND_PREFIX}ssh-keygen -Y sign -n handover-acceptance -f ~/.ssh/id_ed25519 "
        "acceptance.txt" in text
    )
    assert f"{COMMAND_PREFIX}cp acceptance.txt acceptance.txt.sig ../acme-exit.exit/" in text
    assert "  - Jeanne Martin (Chef de projet): j@infog.fr" in text
    assert "  1. Astreinte: +33 1 23 45 67 89" in text
    s3 = render_readme(VOLUMES, CREATED, "x", "", facts(language="en", delivery="s3"))
    assert "cp acceptance.txt" not in s3 and "send acceptance.txt and acceptance.txt.sig" in s3
    bare = render_readme([v.file for v in VOLUMES], CREATED, "x")
    assert "credentials" not in bare and "acceptance.txt" not in bare
    assert "Your provider's contacts are in your contract." in bare


def test_a_provider_template_replaces_sections(tmp_path: Path) -> None:
    (tmp_path / "readme.fr.txt").write_text(
        "%% no-contacts\nAppelez le 3615 ACME ($provider), 24 h/24, prix : 5 $$.\n"
    )
    text = render_readme(VOLUMES, CREATED, "x", "", facts(contacts=[], template_dir=str(tmp_path)))
    assert "Appelez le 3615 ACME (Infogérant SA), 24 h/24, prix : 5 $." in text
    assert "Contrôler que le téléchargement" in text  # the other sections are packaged ones
    (tmp_path / "readme.fr.txt").write_text("%% no-contacts\nAppelez $nobody\n")
    with pytest.raises(UsageError, match=r"section no-contacts: unknown placeholder \$nobody"):
        render_readme(VOLUMES, CREATED, "x", "", facts(contacts=[], template_dir=str(tmp_path)))


def test_both_catalogues_have_the_same_sections() -> None:
    assert set(load_catalogue("fr")) == set(load_catalogue("en"))
    assert {"main", "credentials", "acceptance-local", "acceptance-s3"} <= set(load_catalogue("fr"))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.text(alphabet="abcdef./-_", min_size=1, max_size=12), max_size=2),
    st.sampled_from(["fr", "en"]),
    st.sampled_from([None, "postgresql", "mysql"]),
)
def test_any_volume_content_renders(members: list[str], language: str, engine: Any) -> None:
    volume = VolumeFacts(file="volumes/0001-x.tar.age", number=1, member_files=members)
    engines = {1: engine} if engine else {}
    text = render_readme([volume], CREATED, "x", "", facts(language=language, dump_engines=engines))
    assert f"{COMMAND_PREFIX}mkdir -p restored/0001-x" in text
    prose = [line for line in text.splitlines() if not line.startswith(_NOT_PROSE)]
    assert not [line for line in prose if re.search(r"\$\w", line)]  # every placeholder filled


def test_rules_are_as_long_as_their_heading() -> None:
    text = render_readme(VOLUMES, CREATED, "x", "Infogérance ACME", facts())
    lines = text.splitlines()
    assert lines[:2] == ["Lot de restitution: Infogérance ACME", "=" * 36]
    rules = [i for i, line in enumerate(lines) if line and set(line) == {"-"}]
    assert len(rules) >= 8
    assert all(len(lines[i]) == len(lines[i - 1]) for i in rules)


CONTRACT: dict[str, Any] = {
    "id": "acme-2026",
    "title": "Infogérance",
    "parties": {"provider": {"legal_name": "P"}, "client": {"legal_name": "C"}},
    "dates": {"signed": "2026-01-01", "effective": "2026-01-01"},
}


def test_contract_language_and_timezone_default_and_are_checked() -> None:
    contract = Contract.model_validate(CONTRACT)
    assert (contract.language, contract.timezone) == ("fr", "Europe/Paris")
    assert Contract.model_validate({**CONTRACT, "timezone": "Asia/Tokyo"}).timezone == "Asia/Tokyo"
    with pytest.raises(ValidationError, match=r"unknown time zone 'Mars/Base'"):
        Contract.model_validate({**CONTRACT, "timezone": "Mars/Base"})
    with pytest.raises(ValidationError, match=r"unknown time zone '\.\./etc'"):
        Contract.model_validate({**CONTRACT, "timezone": "../etc"})
    with pytest.raises(ValidationError, match="language"):
        Contract.model_validate({**CONTRACT, "language": "de"})
    with pytest.raises(ValidationError, match="unknown time zone 'Paris'"):
        ReadmeFacts(timezone="Paris")


def test_an_exit_passes_the_contract_facts_to_the_guide(tmp_path: Path) -> None:
    from handover.contract.deadlines import ExitDeadlines
    from handover.contract.loader import load_playbook
    from handover.exit.progress import ExitState
    from tasks.bundle import readme_facts

    acme = Path(__file__).resolve().parents[2] / "playbooks" / "examples" / "acme.yaml"
    playbook = load_playbook(acme)
    calendar = ExitDeadlines(
        notice_date=date(2026, 9, 1),
        switching_starts=date(2026, 12, 1),
        switch_over=date(2027, 1, 15),
        erasure_earliest=date(2027, 3, 1),
        erasure_by=date(2027, 7, 31),
        transition_basis="contract, article 12",
    )
    state = ExitState(bundle_name="acme-2026-exit", deadlines=calendar, password_file="/x.age")
    got = readme_facts(playbook, "acme-2026-exit", state)
    assert (got.language, got.timezone) == ("fr", "Europe/Paris")  # the schema's defaults
    assert (got.retrieval_ends, got.erasure_by) == (date(2027, 3, 1), date(2027, 7, 31))
    assert got.credentials and got.provider == "Infogérance Exemple SAS"
    assert got.dump_engines == {3: "postgresql"}  # erp-db, third dataset, pg_dump -Fc
    assert [c.level for c in got.contacts] == [None, None, None, 1, 2, 3]
    assert got.delivery == playbook.reversibility.delivery.kind
    assert got.template_dir is not None and got.template_dir.endswith("/templates")
    bare = readme_facts(playbook, "acme-2026-exit", ExitState(bundle_name="acme-2026-exit"))
    assert bare.retrieval_ends is None and not bare.credentials
