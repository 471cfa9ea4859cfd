"""The client's own documents collected at takeover (`handover.estate.client_documents`).

A local folder stands for a host (the LocalConnector under a root, as the
demo's hosts): the files are walked by the real GNU tar, parsed by the
bundle's parser and written under the contract's folder. The S3 and SSH
sources are exercised in tests/integration/test_client_documents_remote.py.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from handover.connectors.local import LocalConnector
from handover.contract.documentation import Documentation
from handover.contract.loader import load_playbook, validate_playbook_text
from handover.contract.playbook import Playbook
from handover.contract.readiness import documentation_findings
from handover.documents.baseline_report import baseline_report
from handover.estate.client_documents import (
    INDEX_NAME,
    collect_client_documents,
    read_index,
)
from handover.exit.documentation import client_documents
from handover.state.layout import ContractPaths

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ACME = PROJECT_ROOT / "playbooks" / "examples" / "acme.yaml"


def _playbook(sources: list[dict[str, object]], folder: Path | None = None) -> Playbook:
    text = ACME.read_text(encoding="utf-8")
    playbook = validate_playbook_text(text, str(ACME))
    doc = Documentation.model_validate({"sources": sources})
    copy = playbook.model_copy(update={"documentation": doc})
    copy._source = (folder or ACME.parent) / "acme.yaml"
    return copy


def _collect(playbook: Playbook, root: Path, dest: Path):  # type: ignore[no-untyped-def]
    return collect_client_documents(playbook, dest, connect=lambda name: LocalConnector(name, root))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_host_folder_is_copied_with_its_hashes_and_indexed(tmp_path: Path) -> None:
    root = tmp_path / "web01"
    docs = root / "srv" / "docs"
    (docs / "réseau").mkdir(parents=True)
    files = {
        "dossier-exploitation.pdf": os.urandom(3000),
        "réseau/schéma v2.svg": b"<svg/>",
        "licences.csv": b"product,seats\noffice,12\n",
    }
    for name, data in files.items():
        (docs / name).write_bytes(data)
    (docs / "empty.txt").write_bytes(b"")
    playbook = _playbook([{"name": "dossier", "host": "web01", "path": "/srv/docs"}])
    dest = tmp_path / "out"
    index = _collect(playbook, root, dest)
    assert index.failures == []
    got = {d.name: (d.size, d.sha256, d.path) for d in index.documents}
    files["empty.txt"] = b""
    assert got == {name: (len(data), _sha(data), f"dossier/{name}") for name, data in files.items()}
    for name, data in files.items():
        assert (dest / "dossier" / name).read_bytes() == data
    assert index.sources[0].files == 4 and index.sources[0].bytes == 3000 + 6 + 24
    on_disk = json.loads((dest / INDEX_NAME).read_text(encoding="utf-8"))
    assert {d["name"] for d in on_disk["documents"]} == set(files)
    assert read_index(dest) == index
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]  # no staging left


def test_an_empty_or_missing_source_fails_by_name_and_the_others_are_still_collected(
    tmp_path: Path,
) -> None:
    root = tmp_path / "web01"
    (root / "srv" / "empty" / "sub").mkdir(parents=True)
    (root / "srv" / "ok").mkdir(parents=True)
    (root / "srv" / "ok" / "a.txt").write_bytes(b"a")
    playbook = _playbook(
        [
            {"name": "empty", "host": "web01", "path": "/srv/empty"},
            {"name": "missing", "host": "web01", "path": "/srv/nowhere"},
            {"name": "ok", "host": "web01", "path": "/srv/ok"},
            {"name": "wiki", "file": "exports/wiki.zip"},
        ],
        folder=tmp_path,
    )
    index = _collect(playbook, root, tmp_path / "out")
    failures = index.failures
    assert [line.split(":")[0] for line in failures] == ["empty", "missing", "wiki"]
    assert "no document found" in failures[0]
    assert "nowhere" in failures[1]
    assert "cannot read" in failures[2]
    assert all("\n" not in line for line in failures)
    assert [d.path for d in index.documents] == ["ok/a.txt"]
    assert not (tmp_path / "out" / "empty").exists()


def test_links_are_listed_never_followed_and_names_never_escape(tmp_path: Path) -> None:
    root = tmp_path / "web01"
    docs = root / "srv" / "docs"
    docs.mkdir(parents=True)
    secret = tmp_path / "provider-secret.txt"
    secret.write_bytes(b"provider's own file")
    (docs / "leak").symlink_to(secret)
    (docs / "up").symlink_to("../../..")
    (docs / "real.txt").write_bytes(b"real")
    (docs / "line\nbreak.txt").write_bytes(b"odd name")
    playbook = _playbook([{"name": "docs", "host": "web01", "path": "/srv/docs"}])
    dest = tmp_path / "out"
    index = _collect(playbook, root, dest)
    assert index.failures == []
    assert sorted(d.name for d in index.documents) == ["line\nbreak.txt", "real.txt"]
    assert sorted(index.sources[0].skipped) == [
        "leak (symbolic link, not followed)",
        "up (symbolic link, not followed)",
    ]
    kept = [p for p in (dest / "docs").rglob("*")]
    assert all(not p.is_symlink() for p in kept)
    assert all(p.resolve().is_relative_to(dest.resolve()) for p in kept)
    assert b"provider's own file" not in b"".join(p.read_bytes() for p in kept if p.is_file())


def test_a_source_over_its_limits_fails_and_keeps_nothing(tmp_path: Path) -> None:
    root = tmp_path / "web01"
    docs = root / "srv" / "docs"
    docs.mkdir(parents=True)
    for i in range(3):
        (docs / f"f{i}").write_bytes(b"x" * 100)
    playbook = _playbook(
        [
            {"name": "big", "host": "web01", "path": "/srv/docs", "max_bytes": 250},
            {"name": "many", "host": "web01", "path": "/srv/docs", "max_files": 2},
        ]
    )
    dest = tmp_path / "out"
    index = _collect(playbook, root, dest)
    assert index.failures == [
        "big: more than 250 bytes (max_bytes)",
        "many: more than 2 files (max_files)",
    ]
    assert index.documents == []
    assert sorted(p.name for p in dest.iterdir()) == [INDEX_NAME]


def test_an_export_file_beside_the_playbook_is_copied_but_never_through_a_link(
    tmp_path: Path,
) -> None:
    (tmp_path / "exports").mkdir()
    data = os.urandom(5000)
    (tmp_path / "exports" / "wiki.zip").write_bytes(data)
    (tmp_path / "exports" / "link.zip").symlink_to(tmp_path / "exports" / "wiki.zip")
    playbook = _playbook(
        [
            {"name": "wiki", "file": "exports/wiki.zip"},
            {"name": "linked", "file": "exports/link.zip"},
        ],
        folder=tmp_path,
    )
    index = _collect(playbook, tmp_path, tmp_path / "out")
    assert [d.path for d in index.documents] == ["wiki/wiki.zip"]
    assert index.documents[0].sha256 == _sha(data)
    assert len(index.failures) == 1 and index.failures[0].startswith("linked: ")


def test_a_second_collection_replaces_the_first(tmp_path: Path) -> None:
    root = tmp_path / "web01"
    docs = root / "srv" / "docs"
    docs.mkdir(parents=True)
    (docs / "old.txt").write_bytes(b"old")
    playbook = _playbook([{"name": "docs", "host": "web01", "path": "/srv/docs"}])
    dest = tmp_path / "out"
    _collect(playbook, root, dest)
    (docs / "old.txt").unlink()
    (docs / "new.txt").write_bytes(b"new")
    index = _collect(playbook, root, dest)
    assert [d.name for d in index.documents] == ["new.txt"]
    assert sorted(p.name for p in (dest / "docs").iterdir()) == ["new.txt"]


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ({"name": "a", "file": "../outside.zip"}, "without '..'"),
        ({"name": "a", "file": "/etc/passwd"}, "without '..'"),
        ({"name": "a", "s3": "https://x/y"}, "not an s3://bucket/prefix"),
        ({"name": "a", "path": "/srv"}, "required with path"),
        ({"name": "a", "host": "web01", "path": "/srv", "file": "x"}, "exactly one"),
        ({"name": "../a", "file": "x"}, "name"),
    ],
)
def test_the_playbook_refuses_sources_that_escape_or_are_ambiguous(
    source: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValueError, match=None) as caught:
        Documentation.model_validate({"sources": [source]})
    assert problem in str(caught.value)


def test_duplicate_source_names_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate source name 'a'"):
        Documentation.model_validate(
            {"sources": [{"name": "a", "file": "x"}, {"name": "a", "file": "y"}]}
        )


def test_validate_names_an_unknown_host_and_warns_of_a_missing_export(tmp_path: Path) -> None:
    playbook = _playbook(
        [
            {"name": "d", "host": "nohost", "path": "/srv/docs"},
            {"name": "w", "file": "exports/wiki.zip"},
        ],
        folder=tmp_path,
    )
    found = documentation_findings(playbook, tmp_path)
    assert [(f.loc, f.severity) for f in found] == [
        (("documentation", "sources", 0, "host"), "error"),
        (("documentation", "sources", 1, "file"), "warning"),
    ]
    assert "unknown host 'nohost'" in found[0].message


def test_the_yaml_section_loads(tmp_path: Path) -> None:
    text = ACME.read_text(encoding="utf-8")
    start = text.index("\nphases:")
    text = (
        text[:start]
        + "\ndocumentation:\n  sources:\n    - {name: dossier, host: web01, path: /srv/docs}\n"
        + "    - {name: wiki, file: exports/wiki.zip}\n"
        + "    - {name: contrats, s3: 's3://acme-docs/contrats/'}\n"
        + text[start:]
    )
    path = tmp_path / "acme.yaml"
    path.write_text(text, encoding="utf-8")
    playbook = load_playbook(path)
    assert [s.kind for s in playbook.documentation.sources] == ["host", "file", "s3"]


def test_the_report_indexes_and_the_exit_returns_the_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "home"))
    root = tmp_path / "web01"
    docs = root / "srv" / "docs"
    docs.mkdir(parents=True)
    (docs / "contrat-maintenance.pdf").write_bytes(b"%PDF-1.4 contract")
    playbook = _playbook(
        [
            {"name": "dossier", "host": "web01", "path": "/srv/docs"},
            {"name": "gone", "host": "web01", "path": "/srv/gone"},
        ]
    )
    paths = ContractPaths(playbook.contract_id)
    index = _collect(playbook, root, paths.client_documents_dir)
    from datetime import UTC, datetime

    doc = baseline_report(playbook, [], {}, datetime.now(UTC), client_documents=index)
    digest = _sha(b"%PDF-1.4 contract")
    assert "contrat-maintenance.pdf" in doc.markdown and digest in doc.markdown
    assert "gone" in doc.markdown and "failed" in doc.markdown
    returned = client_documents(paths)
    assert returned == {
        "client-documents/index.json": str(paths.client_documents_dir / INDEX_NAME),
        "client-documents/dossier/contrat-maintenance.pdf": str(
            paths.client_documents_dir / "dossier" / "contrat-maintenance.pdf"
        ),
    }
    assert any(folder == paths.client_documents_dir for folder, _ in paths.working_copies())
