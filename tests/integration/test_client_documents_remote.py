"""The client's own documents collected at takeover from real sources, on a real Prefect server.

A folder on an sshd host (the session's shared root host, read only), a
prefix on the moto server and an export file beside the playbook are named
in `documentation.sources`; the takeover flow runs on the session's Prefect
server and its `documentation-collected` item records the index. A second
test drives the collector alone against the same sshd host for what must
fail: an empty folder, a missing one, a link that must not be followed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from flows.lifecycle import run_phase
from handover.checklist.model import Status
from handover.checklist.store import ChecklistStore
from handover.connectors.factory import connect_host
from handover.contract.loader import load_playbook
from handover.contract.perimeter import Host
from handover.estate.client_documents import INDEX_NAME, collect_client_documents
from handover.exit.documentation import client_documents
from handover.state.layout import ContractPaths
from tests.fixtures.s3 import REGION, MotoServer
from tests.fixtures.sshd import SshdHost
from tests.remote_estate import make_remote_workspace, remote_playbook, write_playbook

pytestmark = pytest.mark.integration

DOSSIER = {
    "Dossier d'exploitation v3.odt": os.urandom(40_000),
    "réseau/schéma réseau.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    "licences/licences 2026.csv": b"produit;postes\nsuite bureautique;12\n",
}
CONTRACTS = {"maintenance/contrat copieurs.pdf": b"%PDF-1.4 copieurs", "hébergeur.pdf": b"%PDF-1.4"}
WIKI = os.urandom(20_000)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _put(folder: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def test_takeover_collects_the_documents_of_every_source(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sshd_shell: SshdHost,
    s3_server: MotoServer,
    s3_client: Any,
    s3_bucket: str,
    prefect_server: str,
) -> None:
    ws = make_remote_workspace(tmp_path, monkeypatch, "docs-takeover")
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    docs = _put(sshd_shell.data_root / f"docs-{os.getpid()}", DOSSIER)
    for key, data in CONTRACTS.items():
        s3_client.put_object(Bucket=s3_bucket, Key=f"contrats/{key}", Body=data)
    _put(ws.root, {"exports/wiki.zip": WIKI})
    sshd_shell.write_known_hosts(ws.contract_dir / "known_hosts")
    data = remote_playbook(
        ws,
        [sshd_shell.host_dict()],
        [],
        s3={"endpoint_url": s3_server.endpoint_url, "region": REGION, "addressing_style": "path"},
    )
    data["documentation"] = {
        "sources": [
            {"name": "dossier-exploitation", "host": "shell", "path": str(docs)},
            {"name": "contrats", "s3": f"s3://{s3_bucket}/contrats/"},
            {"name": "wiki", "file": "exports/wiki.zip"},
        ]
    }
    write_playbook(ws, data)

    assert run_phase("takeover", ws.playbook, fresh=True)

    paths = ContractPaths(ws.contract)
    item = next(
        i
        for i in ChecklistStore().load(ws.contract, "takeover").items
        if i.id == "documentation-collected"
    )
    assert item.status == Status.DONE
    index_path = paths.client_documents_dir / INDEX_NAME
    evidence = next(e for e in item.evidence if e.path == str(index_path))
    assert evidence.sha256 == _sha(index_path.read_bytes())
    index = json.loads(index_path.read_text(encoding="utf-8"))
    expected = {
        **{f"dossier-exploitation/{k}": v for k, v in DOSSIER.items()},
        **{f"contrats/{k}": v for k, v in CONTRACTS.items()},
        "wiki/wiki.zip": WIKI,
    }
    assert {d["path"]: (d["size"], d["sha256"]) for d in index["documents"]} == {
        k: (len(v), _sha(v)) for k, v in expected.items()
    }
    for rel, content in expected.items():
        assert (paths.client_documents_dir / rel).read_bytes() == content
    report = (paths.documents_dir("takeover") / "baseline-report.md").read_text(encoding="utf-8")
    for rel, content in expected.items():
        assert rel.split("/", 1)[1] in report and _sha(content) in report
    returned = client_documents(paths)
    assert set(returned) == {f"client-documents/{k}" for k in expected} | {
        "client-documents/index.json"
    }
    assert load_playbook(ws.playbook).documentation.sources[0].kind == "host"


def test_an_empty_or_missing_folder_over_ssh_fails_by_name_and_links_are_not_followed(
    tmp_path: Path, sshd_shell: SshdHost
) -> None:
    base = sshd_shell.data_root / f"docs-fail-{os.getpid()}"
    (base / "empty" / "sub").mkdir(parents=True)
    linked = _put(base / "linked", {"vrai.txt": b"real"})
    (linked / "passwd").symlink_to("/etc/passwd")
    known_hosts = sshd_shell.write_known_hosts(tmp_path / "known_hosts")
    host = Host.model_validate(sshd_shell.host_dict())
    playbook_path = tmp_path / "p.yaml"
    text = (Path(__file__).resolve().parents[2] / "playbooks" / "examples" / "acme.yaml").read_text(
        encoding="utf-8"
    )
    playbook_path.write_text(text, encoding="utf-8")
    playbook = load_playbook(playbook_path)
    from handover.contract.documentation import Documentation

    sources = Documentation.model_validate(
        {
            "sources": [
                {"name": "empty", "host": "shell", "path": str(base / "empty")},
                {"name": "missing", "host": "shell", "path": str(base / "nowhere")},
                {"name": "linked", "host": "shell", "path": str(linked)},
            ]
        }
    )
    playbook = playbook.model_copy(update={"documentation": sources})
    index = collect_client_documents(
        playbook,
        tmp_path / "out",
        connect=lambda name: connect_host(host, "docs-fail", known_hosts=known_hosts),
    )
    failures = index.failures
    assert [line.split(":")[0] for line in failures] == ["empty", "missing"]
    assert "no document found" in failures[0] and "nowhere" in failures[1]
    assert [(d.path, d.sha256) for d in index.documents] == [("linked/vrai.txt", _sha(b"real"))]
    assert index.sources[2].skipped == ["passwd (symbolic link, not followed)"]
    assert not (tmp_path / "out" / "linked" / "passwd").exists()
