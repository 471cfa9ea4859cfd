"""The demo's sandbox client estate: three hosts written under a folder, with their certificates.

`handover demo` needs a client to take over without touching a real one:
`build_demo_estate(root)` writes under `root/hosts/{web01,db01,files01}`
what such hosts hold (configs under /etc with cron lines and TLS
certificates, a web application under /var/www, a SQL dump under
/var/backups/db, department shares under /srv/shares with thousands of
files: see `handover.demo.host_files`). Each tree is the `root` of a
`local` host in the demo playbook. Content is deterministic (seeded) so two
machines build the same estate; only the certificates depend on today's
date, because one of them must expire in about ten days for the health
checks to find it.

Idempotent and fast the second time: each host's list of files and sizes is
kept under `root/.estate/`; when every file is still there with its size,
the host is reused without generating anything. No symlinks and no hard
links: bundles refuse links when opened. Prints nothing; returns counts.

Datasets the demo playbook reads: web01 `/var/www` and `/etc`; db01 the dump
command `cat var/backups/db/demo.sql` (run with the host root as working
directory, so the path is relative); files01 `/srv/shares`; every host has
certificates under `/etc/ssl/demo`.
"""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from handover.demo.host_files import HOSTS, SEED, generate_host_files
from handover.state.atomic import write_atomic

ESTATE_VERSION = 2  # 2: etc/passwd and var/lib/dpkg/status on every host
CERT_DIR = "etc/ssl/demo"
SOON_CERT_DAYS = 10
_EPOCH = datetime(2026, 1, 15, 9, 30, tzinfo=UTC).timestamp()


class HostEstate(BaseModel):
    """One sandbox host: its root folder, how many files and bytes it holds."""

    model_config = ConfigDict(frozen=True)

    name: str
    root: Path
    files: int
    bytes: int
    reused: bool


class DemoEstate(BaseModel):
    """What `build_demo_estate` made (or found): per host, and in total."""

    model_config = ConfigDict(frozen=True)

    root: Path
    hosts: list[HostEstate]
    certificates: list[str]  # host:path of each certificate, path as seen by the host

    @property
    def files(self) -> int:
        return sum(h.files for h in self.hosts)

    @property
    def bytes(self) -> int:
        return sum(h.bytes for h in self.hosts)

    @property
    def reused(self) -> bool:
        return all(h.reused for h in self.hosts)


_CERTS: dict[str, list[tuple[str, int]]] = {
    "web01": [("www.demo-estate.example", 365), ("intranet.demo-estate.example", SOON_CERT_DAYS)],
    "db01": [("db01.demo-estate.lan", 365)],
    "files01": [("files01.demo-estate.lan", 365)],
}


# --------------------------------------------------------------------------- writing


def _manifest_path(root: Path, host: str) -> Path:
    return root / ".estate" / f"{host}.json"


def _intact(root: Path, host: str) -> tuple[int, int] | None:
    """(files, bytes) if the host tree recorded earlier is all there, else None."""
    try:
        recorded = json.loads(_manifest_path(root, host).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if recorded.get("version") != ESTATE_VERSION:
        return None
    sizes: dict[str, int] = recorded.get("files", {})
    host_root = root / "hosts" / host
    for relpath, size in sizes.items():
        try:
            if os.stat(host_root / relpath).st_size != size:
                return None
        except OSError:
            return None
    return len(sizes), sum(sizes.values())


def _write_host(root: Path, host: str) -> tuple[int, int]:
    files = generate_host_files(host)
    host_root = root / "hosts" / host
    made: set[Path] = set()
    mtimes = random.Random(f"{SEED}:{host}:mtime")
    for relpath, data in files.items():
        path = host_root / relpath
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_bytes(data)
        moment = _EPOCH - mtimes.randint(0, 2 * 365 * 86400)
        os.utime(path, (moment, moment))
    sizes = {relpath: len(data) for relpath, data in files.items()}
    record = {"version": ESTATE_VERSION, "files": sizes}
    write_atomic(_manifest_path(root, host), json.dumps(record, ensure_ascii=False).encode())
    return len(sizes), sum(sizes.values())


def _certificate_ok(path: Path, days: int, now: datetime) -> bool:
    """An existing certificate is kept while its remaining life still fits its role."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    left = (cert.not_valid_after_utc - now).total_seconds() / 86400
    if days <= SOON_CERT_DAYS:
        return days - 3 < left <= days  # "expiring in about ten days", not already expired
    return left > 300


def _write_certificates(root: Path, host: str, now: datetime) -> list[str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    shown: list[str] = []
    folder = root / "hosts" / host / CERT_DIR
    for cn, days in _CERTS[host]:
        cert_path = folder / f"{cn}.pem"
        shown.append(f"{host}:/{CERT_DIR}/{cn}.pem")
        if _certificate_ok(cert_path, days, now):
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Demo Estate SARL"),
                x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=365 - days if days < 365 else 1))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_atomic(folder / "private" / f"{cn}.key", key_pem, mode=0o600)
        write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return shown


def build_demo_estate(root: Path, *, now: datetime | None = None) -> DemoEstate:
    """Build (or reuse) the sandbox estate under `root`; see the module docstring.

    A host whose recorded files are all present with their sizes is reused
    as is; otherwise it is written again from its seed. Certificates are
    renewed only when their remaining life no longer fits their role.
    """
    root = Path(root).absolute()
    now = now or datetime.now(UTC)
    hosts: list[HostEstate] = []
    certificates: list[str] = []
    for host in HOSTS:
        found = _intact(root, host)
        reused = found is not None
        files, size = found if found is not None else _write_host(root, host)
        certificates.extend(_write_certificates(root, host, now))
        hosts.append(
            HostEstate(
                name=host, root=root / "hosts" / host, files=files, bytes=size, reused=reused
            )
        )
    return DemoEstate(root=root, hosts=hosts, certificates=certificates)
