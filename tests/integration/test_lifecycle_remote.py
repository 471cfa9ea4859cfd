"""The whole contract lifecycle on real SSH hosts and S3, against a real Prefect server.

Three sshd hosts stand for the client's machines (root with a shell, a user
without sudo, an SFTP-only account), a moto server for its buckets, and the
session's Prefect server runs the four phase flows in this process.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

from flows.acceptance import auto_acceptance_input
from flows.lifecycle import drill_notice_date, pause_key, paused_flow_runs, run_phase
from handover.checklist.model import Status
from handover.checklist.store import ChecklistStore
from handover.phases import Phase
from handover.secrets.references import Secret
from handover.secrets.vault import Kind, Vault, VaultEntry
from tests.canary import kdbx_plaintext, make_canaries, search_canaries, search_text
from tests.conftest import require_binary
from tests.fixtures.prefect_server import api_headers, prefect_home
from tests.fixtures.s3 import REGION, MotoServer
from tests.fixtures.sshd import NOSUDO_USER, SshdFactory
from tests.remote_estate import (
    LifecycleSshd,
    RemoteWorkspace,
    cleanup_home_keys,
    home_authorized_keys,
    make_remote_workspace,
    provider_access_entry,
    put_dump,
    put_tree,
    remote_playbook,
    start_lifecycle_hosts,
    write_known_hosts,
    write_playbook,
)

pytestmark = pytest.mark.integration

PHASES: tuple[str, ...] = tuple(Phase)
ACCOUNTS = ["root", NOSUDO_USER]


@pytest.fixture
def lc_hosts(sshd_factory: SshdFactory) -> Iterator[dict[str, LifecycleSshd]]:
    hosts = start_lifecycle_hosts(sshd_factory)
    try:
        yield hosts
    finally:
        for host in hosts.values():
            host.kill()


# --------------------------------------------------------------------------- helpers


def flow_runs(name_like: str) -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_=name_like))
        )


def provider_logs_in(ws: RemoteWorkspace, host: LifecycleSshd, account: str) -> bool:
    """Does the throwaway provider key open a session (paramiko, pinned host key)?"""
    from handover.estate.access import try_login

    return try_login(
        host.address,
        host.port,
        account,
        ws.provider_key.read_bytes(),
        ws.contract_dir / "known_hosts",
    )


def ssh_playbook(ws: RemoteWorkspace, hosts: dict[str, LifecycleSshd]) -> dict[str, Any]:
    """Three hosts (keys in the vault), a tree on each, a dump on the shell host."""
    vault = Vault(ws.contract)
    vault.init()
    host_entries = []
    for name, host in hosts.items():
        vault.add(
            VaultEntry(
                name=f"{name}-login",
                kind=Kind.SSH_KEY,
                username=host.user,
                url=f"ssh://{host.address}:{host.port}",
                group="Servers/SSH",
            ),
            Secret(host.key_path.read_bytes()),
        )
        host_entries.append(host.host_dict(credential=f"vault:{ws.contract}/{name}-login"))
    datasets: list[dict[str, Any]] = [
        {"name": f"{name}-files", "host": name, "paths": [str(put_tree(host))]}
        for name, host in hosts.items()
    ]
    datasets.append(
        {
            "name": "db",
            "host": "shell",
            "dump": {"command": put_dump(hosts["shell"]), "filename": "db.sql"},
        }
    )
    write_known_hosts(ws, hosts)
    return remote_playbook(
        ws,
        host_entries,
        datasets,
        provider_access=[
            provider_access_entry(ws, "shell", "root"),
            provider_access_entry(ws, "nosudo", NOSUDO_USER),
        ],
    )


def run_all(ws: RemoteWorkspace, phases: tuple[str, ...] = PHASES) -> None:
    for phase in phases:
        assert run_phase(phase, ws.playbook, auto_accept=True, fresh=True), (
            f"{phase} did not complete: {failed_items(ws, phase)}"
        )


def checklist_names(store: ChecklistStore, contract: str, phase: str) -> list[str]:
    """The phase's checklists: the operational run keeps one per period (month, quarter)."""
    return store.periods(contract) if phase == "operational" else [phase]


def failed_items(ws: RemoteWorkspace, phase: str) -> dict[str, str | None]:
    store = ChecklistStore()
    return {
        f"{name}/{i.id}": i.reason
        for name in checklist_names(store, ws.contract, phase)
        for i in store.load(ws.contract, name).items
        if i.status != Status.DONE
    }


def assert_all_done(
    ws: RemoteWorkspace,
    phases: tuple[str, ...] = PHASES,
    *,
    no_evidence: frozenset[str] = frozenset(),
) -> None:
    """Every item of `phases` done with evidence (but the `no_evidence` ones), runs Completed."""
    store = ChecklistStore()
    for phase in phases:
        names = checklist_names(store, ws.contract, phase)
        assert names, phase
        items = [i for name in names for i in store.load(ws.contract, name).items]
        states = {i.id: i.status for i in items}
        assert all(s == Status.DONE for s in states.values()), (phase, failed_items(ws, phase))
        bare = {i.id for i in items if not i.evidence}
        assert bare == no_evidence & set(states), (phase, bare)
    assert store.audit_log(ws.contract).verify() == []
    for phase in phases:
        runs = flow_runs(f"{phase}-{ws.contract}")
        assert runs and all(r.state.is_completed() for r in runs), phase


def verify_signature(keygen: str, folder: Path, name: str, namespace: str) -> None:
    allowed = folder / "allowed_signers"
    allowed.write_text(f"provider {(folder / 'provider.pub').read_text()}")
    with open(folder / name, "rb") as data:
        subprocess.run(
            [
                keygen,
                "-Y",
                "verify",
                "-f",
                str(allowed),
                "-I",
                "provider",
                "-n",
                namespace,
                "-s",
                str(folder / f"{name}.sig"),
            ],
            stdin=data,
            check=True,
            capture_output=True,
        )


def age_decrypt_tar(age: str, key: Path, encrypted: Path, into: Path) -> None:
    into.mkdir(parents=True)
    dec = subprocess.Popen([age, "-d", "-i", str(key), str(encrypted)], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(into)], stdin=dec.stdout, check=True)
    assert dec.stdout is not None
    dec.stdout.close()
    assert dec.wait() == 0, f"age -d failed on {encrypted}"


def open_bundle(bundle: Path, key: Path, into: Path) -> dict[str, Path]:
    """What the client does with standard tools only; returns volume name -> extracted folder."""
    age = require_binary("age", "age")
    keygen = require_binary("ssh-keygen", "openssh-client")
    subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=bundle, check=True)
    verify_signature(keygen, bundle, "SHA256SUMS", "handover-bundle")
    opened = {}
    for volume in sorted((bundle / "volumes").glob("*.tar.age")):
        out = into / volume.name.removesuffix(".tar.age")
        age_decrypt_tar(age, key, volume, out)
        subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=out, check=True)
        opened[volume.name] = out
    age_decrypt_tar(age, key, bundle / "index.tar.age", into / "index")
    return opened


def kdbx_password(key: Path, encrypted: Path) -> str:
    age = require_binary("age", "age")
    result = subprocess.run(
        [age, "-d", "-i", str(key), str(encrypted)], check=True, capture_output=True
    )
    return result.stdout.decode().strip()


def find_member(opened: dict[str, Path], suffix: str) -> Path:
    hits = [p for folder in opened.values() for p in folder.rglob("*") if str(p).endswith(suffix)]
    assert len(hits) == 1, (suffix, hits)
    return hits[0]


# --------------------------------------------------------------------------- tests


def test_lifecycle_on_ssh_hosts(
    lc_hosts: dict[str, LifecycleSshd],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prefect_server: str,
) -> None:
    ws = make_remote_workspace(tmp_path, monkeypatch, "ssh-estate")
    write_playbook(ws, ssh_playbook(ws, lc_hosts))
    try:
        run_all(ws, ("takeover", "implementation"))
        # (read before the exit erases the provider's working copies)
        # The SFTP-only host: inventoried from what SFTP can read, the gaps said as gaps.
        inv = json.loads((ws.contract_dir / "takeover" / "inventory" / "sftponly.json").read_text())
        assert inv["os_release"] and inv["users"], inv
        assert any("SFTP" in why for why in inv["unreadable"]), inv["unreadable"]
        shell_inv = json.loads(
            (ws.contract_dir / "takeover" / "inventory" / "shell.json").read_text()
        )
        assert shell_inv["packages"] and not any("SFTP" in w for w in shell_inv["unreadable"])
        baseline = json.loads(
            (ws.contract_dir / "takeover" / "baseline" / "sftponly-files.json").read_text()
        )
        assert any(m["path"].endswith('it\'s "quoted" & $HOME.txt') for m in baseline), baseline

        # Installed where sshd reads it: the provider key logs in before the exit.
        assert provider_logs_in(ws, lc_hosts["shell"], "root")
        assert provider_logs_in(ws, lc_hosts["nosudo"], NOSUDO_USER)
        run_all(ws, ("operational", "reversibility"))
    finally:
        cleanup_home_keys(ws.contract, ACCOUNTS)
    assert_all_done(ws)
    updates = json.loads((ws.contract_dir / "operational" / "security-updates.json").read_text())
    assert updates["sftponly"]["unreadable"].startswith("account limited to SFTP"), updates
    assert updates["shell"]["package_manager"] == "apt", updates["shell"]

    # Provider access: removed from both accounts, and the key is refused (paramiko).
    for account in ACCOUNTS:
        path = home_authorized_keys(account)
        assert f"handover:{ws.contract}" not in (path.read_text() if path.exists() else "")
    assert not provider_logs_in(ws, lc_hosts["shell"], "root")
    assert not provider_logs_in(ws, lc_hosts["nosudo"], NOSUDO_USER)
    revoked = json.loads((ws.contract_dir / "reversibility" / "access-revoked.json").read_text())
    assert len(revoked) == 2 and all(r["login_refused"] for r in revoked), revoked

    # The delivered bundle opens with the client's standard tools.
    deliveries = ws.root / "deliveries"
    bundle = next(p for p in deliveries.iterdir() if p.is_dir() and not p.name.endswith(".exit"))
    opened = open_bundle(bundle, ws.keys.client_key, tmp_path / "opened")
    assert len(opened) == 4
    for name in ("notes with spaces.txt", 'it\'s "quoted" & $HOME.txt', "sub dir/deep file.bin"):
        hits = [p for folder in opened.values() for p in folder.rglob("*") if str(p).endswith(name)]
        assert len(hits) == 3, (name, hits)  # one per host, the SFTP-only one included
    assert find_member(opened, "db.sql").read_bytes().startswith(b"-- dump of the shell host")

    # Credentials handed back in a KDBX opened with the password delivered apart.
    from pykeepass import PyKeePass

    exit_dir = bundle.parent / f"{bundle.name}.exit"
    password = kdbx_password(ws.keys.client_key, exit_dir / "credentials-password.txt.age")
    kdbx = PyKeePass(str(tmp_path / "opened" / "index" / "credentials.kdbx"), password=password)
    assert {e.title for e in kdbx.entries} >= {"shell-login", "nosudo-login", "sftponly-login"}

    # Erasure certificate signed, the provider's copies gone.
    verify_signature(
        require_binary("ssh-keygen", "openssh-client"),
        exit_dir,
        "erasure-certificate.md",
        "handover-erasure",
    )
    assert not (ws.root / "backups" / ws.contract).exists()
    assert not (ws.contract_dir / "vault.age").exists()


def test_one_host_down_fails_its_own_items_only(
    lc_hosts: dict[str, LifecycleSshd],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prefect_server: str,
) -> None:
    ws = make_remote_workspace(tmp_path, monkeypatch, "ssh-down")
    data = ssh_playbook(ws, lc_hosts)
    data["security"]["provider_access"] = []
    write_playbook(ws, data)
    lc_hosts["nosudo"].stop()

    assert not run_phase("takeover", ws.playbook, fresh=True)
    runs = flow_runs(f"takeover-{ws.contract}")
    assert len(runs) == 1 and runs[0].state.is_failed(), runs[0].state

    checklist = ChecklistStore().load(ws.contract, "takeover")
    for item_id, names in (
        ("hosts-reachable", "nosudo"),
        ("inventory", "nosudo"),
        ("baseline-snapshot", "nosudo-files"),
    ):
        item = checklist.item(item_id)
        assert item.status == Status.FAILED, (item_id, item.status)
        reason = item.reason or ""
        assert reason.startswith(f"{names}: "), (item_id, reason)
        assert "shell" not in reason and "sftponly" not in reason, (item_id, reason)
    assert checklist.item("credentials-received").status == Status.DONE
    assert checklist.item("reversibility-plan").status == Status.DONE

    # What the other hosts gave is there.
    folder = ws.contract_dir / "takeover"
    reach = json.loads((folder / "reachability.json").read_text())
    assert [n for n, r in reach.items() if not r["reachable"]] == ["nosudo"], reach
    for name in ("shell", "sftponly"):
        assert json.loads((folder / "inventory" / f"{name}.json").read_text())["host"] == name
    assert not (folder / "inventory" / "nosudo.json").exists()
    for dataset in ("shell-files", "sftponly-files", "db"):
        assert json.loads((folder / "baseline" / f"{dataset}.json").read_text()), dataset
    assert not (folder / "baseline" / "nosudo-files.json").exists()

    # The host is back: a rerun retries the failed items and completes.
    lc_hosts["nosudo"].start()
    assert run_phase("takeover", ws.playbook), failed_items(ws, "takeover")
    assert (folder / "inventory" / "nosudo.json").exists()


# --------------------------------------------------------------------------- S3


class ClientAtExit(threading.Thread):
    """Stands in for the client once the reversibility flow waits for acceptance.

    Downloads every file of the bundle through the presigned links of
    `delivery.json` with plain urllib (the bundle in the provider's bucket is
    erased after acceptance), runs `also` (e.g. fetch the files delivered
    beside the bundle), then answers through the API as the Prefect UI does.
    """

    def __init__(
        self, ws: RemoteWorkspace, into: Path, also: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        super().__init__(name="client-at-exit", daemon=True)
        self.ws, self.into, self.also = ws, into, also
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.delivery: dict[str, Any] = {}

    def run(self) -> None:
        from prefect.flow_runs import resume_flow_run

        answered_acceptance = False
        deadline = time.monotonic() + 900
        while not self.stop.is_set() and time.monotonic() < deadline:
            # By tags (contract:<id>, phase:reversibility), never by name: a name prefix
            # also matches another contract whose id starts with this one's.
            runs = paused_flow_runs(self.ws.contract)
            waiting = {pause_key(run): run for run in runs}
            if "client-acceptance" in waiting and not answered_acceptance:
                try:
                    self.download()
                except BaseException as exc:  # reported by check(); the client refuses
                    self.error = exc
                resume_flow_run(
                    waiting["client-acceptance"].id,
                    run_input=auto_acceptance_input(
                        self.ws.playbook,
                        waiting["client-acceptance"].id,
                        decision="accepted" if self.error is None else "refused",
                    ),
                )
                answered_acceptance = True
                if self.error is not None:
                    return
            elif "knowledge-transfer" in waiting:
                resume_flow_run(
                    waiting["knowledge-transfer"].id,
                    run_input={"confirmed_by": "incoming team (test)", "sessions": "test"},
                )
                return
            self.stop.wait(0.5)

    def download(self) -> None:
        path = self.ws.contract_dir / "reversibility" / "delivery.json"
        self.delivery = json.loads(path.read_text())
        links = self.delivery["links"]
        assert {"README.txt", "SHA256SUMS", "SHA256SUMS.sig", "index.tar.age"} <= set(links)
        for rel, url in links.items():
            target = self.into / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with urllib.request.urlopen(url, timeout=60) as response:
                target.write_bytes(response.read())
        if self.also is not None:
            self.also(self.delivery)

    def check(self) -> None:
        self.stop.set()
        self.join(timeout=10)
        if self.error is not None:
            raise AssertionError(f"client download failed: {self.error!r}") from self.error


def run_reversibility_as_client(ws: RemoteWorkspace, client: ClientAtExit) -> bool:
    client.start()
    try:
        return run_phase(
            "reversibility",
            ws.playbook,
            auto_accept=False,
            fresh=True,
            notice_date=drill_notice_date(ws.playbook),
        )
    finally:
        client.check()


def s3_settings(server: MotoServer, ws: RemoteWorkspace, key_id: str, secret: str) -> dict:
    """perimeter.s3 for the moto server, credentials in the vault (`s3-ops`)."""
    vault = Vault(ws.contract)
    vault.init()
    if "s3-ops" not in vault.names():
        vault.add(
            VaultEntry(name="s3-ops", kind=Kind.API_KEY, username=key_id, url=server.endpoint_url),
            Secret(secret.encode()),
        )
    return {
        "endpoint_url": server.endpoint_url,
        "region": REGION,
        "addressing_style": "path",
        "access_key_id": f"vault:{ws.contract}/s3-ops#username",
        "secret_access_key": f"vault:{ws.contract}/s3-ops",
    }


SOURCE_OBJECTS = {
    "shared/report 2026.pdf": b"%PDF-1.4 not really\n" * 100,
    'shared/it\'s "quoted".txt': b"quoted name\n",
    "shared/deep/a/b/c.bin": bytes(range(256)) * 1024,
    "outside/not-exported.txt": b"outside the prefix\n",
}


def make_buckets(server: MotoServer) -> tuple[str, str, str]:
    """(source bucket filled with SOURCE_OBJECTS, delivery bucket, backups bucket)."""
    client = server.client()
    suffix = uuid.uuid4().hex[:10]
    names = (f"client-data-{suffix}", f"provider-out-{suffix}", f"provider-bkp-{suffix}")
    for name in names:
        client.create_bucket(Bucket=name)
    for key, body in SOURCE_OBJECTS.items():
        client.put_object(Bucket=names[0], Key=key, Body=body)
    return names


def test_reversibility_with_s3_dataset_and_delivery(
    s3_server: MotoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prefect_server: str,
) -> None:
    s3_server.start()
    ws = make_remote_workspace(tmp_path, monkeypatch, "s3-estate")
    source, out, _ = make_buckets(s3_server)
    data = remote_playbook(
        ws,
        [],
        [{"name": "docs", "s3": {"bucket": source, "prefix": "shared/"}}],
        s3=s3_settings(s3_server, ws, "AKIATESTS3ESTATE", "s3-estate-secret"),
        delivery={"kind": "s3", "bucket": out, "prefix": "exits/", "link_expiry_days": 7},
    )
    write_playbook(ws, data)

    assert run_phase("takeover", ws.playbook, fresh=True), failed_items(ws, "takeover")
    downloaded = tmp_path / "downloaded"
    client = ClientAtExit(ws, downloaded)
    assert run_reversibility_as_client(ws, client), failed_items(ws, "reversibility")
    assert client.delivery, "the flow never waited for the client's acceptance"
    # No host in this contract: the inventory item has no host inventory to show.
    assert_all_done(ws, ("takeover", "reversibility"), no_evidence=frozenset({"inventory"}))
    assert client.delivery["kind"] == "s3" and client.delivery["link_expiry_days"] == 7
    assert all(u.startswith(s3_server.endpoint_url) for u in client.delivery["links"].values())

    # What the client got by the links alone opens with age, tar and sha256sum -c.
    opened = open_bundle(downloaded, ws.keys.client_key, tmp_path / "opened")
    assert len(opened) == 1
    folder = next(iter(opened.values()))
    for key, body in SOURCE_OBJECTS.items():
        found = [p for p in folder.rglob("*") if p.is_file() and str(p).endswith(key[7:])]
        if key.startswith("shared/"):
            assert len(found) == 1 and found[0].read_bytes() == body, (key, found)
        else:
            assert not found, key
    manifest = json.loads((tmp_path / "opened" / "index" / "MANIFEST.json").read_text())
    assert "s3-estate" in json.dumps(manifest["extra"]["checklists"])


# --------------------------------------------------------------------------- no leak, proven


def public_line_of(pem: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_ssh_private_key(pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def hand_over_credentials(ws: RemoteWorkspace, canaries: dict[str, str], key_id: str) -> None:
    """What the client gives at takeover: a KeePass file (SSH key, password) and a CSV (S3)."""
    from pykeepass import create_database

    from handover.secrets.csv_import import import_csv
    from handover.secrets.kdbx import import_kdbx

    received = ws.root.parent / "received"
    received.mkdir()
    kp = create_database(str(received / "client.kdbx"), password="client-import-pass")
    servers = kp.add_group(kp.root_group, "Servers")
    kp.add_entry(servers, "shell-root", "root", canaries["ssh_private_key"])
    kp.add_entry(servers, "sftponly-login", "handover-sftp", canaries["ssh_private_key"])
    kp.add_entry(servers, "nosudo-password", NOSUDO_USER, canaries["password"])
    kp.save()
    csv_file = received / "bitwarden.csv"
    csv_file.write_text(
        "folder,favorite,type,name,notes,fields,reprompt,login_uri,login_username,"
        "login_password,login_totp\n"
        f"Cloud,,login,s3-ops,,,,http://127.0.0.1,{key_id},{canaries['s3_secret_key']},\n"
    )
    vault = Vault(ws.contract)
    vault.init()
    kdbx_result = import_kdbx(vault, received / "client.kdbx", Secret(b"client-import-pass"))
    assert sorted(kdbx_result.added) == ["nosudo-password", "sftponly-login", "shell-root"]
    assert import_csv(vault, csv_file).added == ["s3-ops"]
    assert vault.get("shell-root").kind == Kind.SSH_KEY


def prefect_logs() -> str:
    lines = []
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            page = client.read_logs(limit=200, offset=offset)
            lines += [f"{log.timestamp} {log.name} {log.message}" for log in page]
            if len(page) < 200:
                return "\n".join(lines)
            offset += len(page)


def prefect_artifacts() -> str:
    bodies = []
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            page = client.read_artifacts(limit=200, offset=offset)
            bodies += [a.model_dump_json() for a in page]
            if len(page) < 200:
                return "\n".join(bodies)
            offset += len(page)


def prefect_events(api_url: str, since: float) -> tuple[int, str]:
    """Every event since `since` through the server's /events/filter endpoint (paged)."""
    from datetime import UTC, datetime, timedelta

    import httpx

    start = datetime.fromtimestamp(since, UTC) - timedelta(minutes=1)
    body = {
        "filter": {
            "occurred": {"since": start.isoformat(), "until": datetime.now(UTC).isoformat()}
        },
        "limit": 50,
    }
    events: list[Any] = []
    with httpx.Client(timeout=60, headers=api_headers()) as http:
        response = http.post(f"{api_url}/events/filter", json=body)
        while True:
            response.raise_for_status()
            page = response.json()
            events += page["events"]
            if not page.get("next_page"):
                break
            response = http.get(page["next_page"])
    return len(events), json.dumps(events)


def test_no_secret_leaks_over_the_whole_lifecycle(
    sshd_factory: SshdFactory,
    s3_server: MotoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prefect_server: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = time.time()
    canaries = make_canaries()
    key_id = "AKIACANARYTEST0001"
    # In the environment too: nothing may copy the environment anywhere.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", canaries["s3_secret_key"])
    monkeypatch.setenv("HANDOVER_TEST_PASSWORD", canaries["password"])
    monkeypatch.setenv("HANDOVER_TEST_SSH_KEY", canaries["ssh_private_key"])

    hosts = start_lifecycle_hosts(sshd_factory, password=canaries["password"])
    s3_server.start()
    try:
        canary_pub = public_line_of(canaries["ssh_private_key"])
        for name in ("shell", "sftponly"):
            hosts[name].allow_key(canary_pub)
        ws = make_remote_workspace(tmp_path, monkeypatch, "canary-estate")
        hand_over_credentials(ws, canaries, key_id)
        source, out, backups = make_buckets(s3_server)
        refs = {
            "shell": {"credential": f"vault:{ws.contract}/shell-root"},
            "sftponly": {"credential": f"vault:{ws.contract}/sftponly-login"},
            "nosudo": {"credential": f"vault:{ws.contract}/nosudo-password", "auth": "password"},
        }
        datasets: list[dict[str, Any]] = [
            {"name": f"{name}-files", "host": name, "paths": [str(put_tree(host))]}
            for name, host in hosts.items()
        ]
        datasets.append(
            {
                "name": "db",
                "host": "shell",
                "dump": {"command": put_dump(hosts["shell"]), "filename": "db.sql"},
            }
        )
        datasets.append({"name": "docs", "s3": {"bucket": source, "prefix": "shared/"}})
        write_known_hosts(ws, hosts)
        data = remote_playbook(
            ws,
            [h.host_dict(**refs[name]) for name, h in hosts.items()],
            datasets,
            provider_access=[
                provider_access_entry(ws, "shell", "root"),
                provider_access_entry(ws, "nosudo", NOSUDO_USER),
            ],
            s3={
                "endpoint_url": s3_server.endpoint_url,
                "region": REGION,
                "addressing_style": "path",
                "access_key_id": f"vault:{ws.contract}/s3-ops#username",
                "secret_access_key": f"vault:{ws.contract}/s3-ops",
            },
            delivery={"kind": "s3", "bucket": out, "prefix": "exits/", "link_expiry_days": 7},
            backups_target=f"s3://{backups}/handover",
        )
        write_playbook(ws, data)
        text = ws.playbook.read_text()
        assert not search_text(canaries, text, "playbook")

        s3 = s3_server.client()
        beside: dict[str, bytes] = {}

        def fetch_beside(delivery: dict[str, Any]) -> None:
            # The password file travels beside the bundle (not inside it, not by the links).
            bucket, _, prefix = delivery["location"].removeprefix("s3://").partition("/")
            key = f"{prefix.rstrip('/')}.exit/credentials-password.txt.age"
            beside["password"] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()

        downloaded = tmp_path / "downloaded"
        client = ClientAtExit(ws, downloaded, also=fetch_beside)
        try:
            run_all(ws, ("takeover", "implementation", "operational"))
            assert provider_logs_in(ws, hosts["nosudo"], NOSUDO_USER)
            assert run_reversibility_as_client(ws, client), failed_items(ws, "reversibility")
            assert client.delivery, "the flow never waited for the client's acceptance"
        finally:
            cleanup_home_keys(ws.contract, ACCOUNTS)
        assert_all_done(ws)
        assert not provider_logs_in(ws, hosts["shell"], "root")
        exits = [o["Key"] for o in s3.list_objects_v2(Bucket=out).get("Contents", [])]
        exit_files = tmp_path / "exit-files"
        for key in exits:
            (exit_files / key).parent.mkdir(parents=True, exist_ok=True)
            (exit_files / key).write_bytes(s3.get_object(Bucket=out, Key=key)["Body"].read())
        assert any(k.endswith("erasure-certificate.md") for k in exits), exits
    finally:
        for host in hosts.values():
            host.kill()

    # Where a secret must never be: search each place, collect every hit with its location.
    hits: list[str] = []
    hits += search_canaries(canaries, [prefect_home()])
    hits += search_canaries(canaries, [ws.home])
    plaintext = [p for p in downloaded.rglob("*") if p.is_file() and not p.name.endswith(".age")]
    assert {p.name for p in plaintext} >= {"README.txt", "SHA256SUMS", "SHA256SUMS.sig"}
    hits += search_canaries(canaries, plaintext)
    hits += search_canaries(canaries, [exit_files])
    hits += search_canaries(canaries, [ws.playbook])
    logs = prefect_logs()
    assert f"takeover-{ws.contract}" in logs or ws.contract in logs
    hits += search_text(canaries, logs, "Prefect API logs")
    artifacts = prefect_artifacts()
    assert f"{ws.contract}-reversibility-checklist" in artifacts
    hits += search_text(canaries, artifacts, "Prefect API artifacts")
    count, events = prefect_events(prefect_server, started)
    assert count > 0 and "handover.checklist" in events, count
    hits += search_text(canaries, events, "Prefect API events")
    captured = capsys.readouterr()
    hits += search_text(canaries, captured.out, "captured stdout")
    hits += search_text(canaries, captured.err, "captured stderr")
    hits += search_text(canaries, caplog.text, "captured log records")
    assert not hits, "canary secrets leaked:\n" + "\n".join(hits)

    # Positive control: every canary is in the credentials handed back to the client.
    assert beside["password"]
    password_file = tmp_path / "credentials-password.txt.age"
    password_file.write_bytes(beside["password"])
    password = kdbx_password(ws.keys.client_key, password_file)
    index = tmp_path / "index"
    age_decrypt_tar(
        require_binary("age", "age"), ws.keys.client_key, downloaded / "index.tar.age", index
    )
    found = search_text(canaries, kdbx_plaintext(index / "credentials.kdbx", password), "kdbx")
    assert {hit.split(": ")[1].split(" ")[0] for hit in found} == set(canaries), found
