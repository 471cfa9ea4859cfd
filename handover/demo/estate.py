"""The demo's sandbox client estate: three hosts with realistic trees, and the demo keys.

`handover demo` needs a client to take over without touching a real one:
`build_demo_estate(root)` writes under `root/hosts/{web01,db01,files01}`
what such hosts hold (configs under /etc with cron lines and TLS
certificates, a web application under /var/www, a SQL dump under
/var/backups/db, department shares under /srv/shares with thousands of
files, French names with accents, spaces, quotes and apostrophes, empty
files and a few larger ones). Each tree is the `root` of a `local` host in
the demo playbook. Content is deterministic (seeded) so two machines build
the same estate; only the certificates depend on today's date, because one
of them must expire in about ten days for the health checks to find it.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from handover.state.atomic import write_atomic

__all__ = [
    "DemoEstate",
    "DemoKeys",
    "HostEstate",
    "build_demo_estate",
    "generate_host_files",
    "make_demo_keys",
]

ESTATE_VERSION = 1
SEED = "handover-demo-estate"
HOSTS = ("web01", "db01", "files01")
SHARES_SMALL_FILES = 3000
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

    def host_root(self, name: str) -> Path:
        return next(h.root for h in self.hosts if h.name == name)


# --------------------------------------------------------------------------- content


_WORDS = (  # noqa: SIM905 - a sentence reads better than 70 quoted words
    "contrat client projet réunion budget livraison équipe planning fournisseur facture "
    "maintenance serveur sauvegarde réseau sécurité accès procédure validation direction "
    "comptabilité trimestre objectif bilan relance commande devis signature échéance "
    "migration formation support incident ticket délai conformité audit rapport analyse "
    "le la les un une des du de et pour avec sans sur dans par vers selon afin que qui "
    "prévu réalisé en cours à valider urgent mensuel annuel nouveau ancien prochain"
).split()
_MONTHS = (  # noqa: SIM905
    "janvier février mars avril mai juin juillet août septembre octobre novembre décembre"
).split()
_CLIENTS = (
    "Boulangerie Martin",
    "Cabinet Lefèvre & Associés",
    "Garage du Centre",
    "Mairie de Saint-Étienne-du-Bois",
    "Clinique Vétérinaire des Pins",
    "SARL L'Atelier Bleu",
    "Transports Dubois",
    "Pharmacie de l'Église",
)
_DEPARTMENTS = (
    "Direction",
    "Comptabilité",
    "Ressources Humaines",
    "Commercial",
    "Technique",
    "Juridique",
    "Marketing",
    "Qualité & Sécurité",
)
_TOPICS = ("Réunions", "Contrats", "Projets", "Archives", "Modèles", "Notes de service")
_BINARY_MAGIC = {
    ".pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    ".docx": b"PK\x03\x04\x14\x00\x06\x00",
    ".xlsx": b"PK\x03\x04\x14\x00\x06\x00",
    ".pptx": b"PK\x03\x04\x14\x00\x06\x00",
    ".png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    ".jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    ".zip": b"PK\x03\x04\x14\x00\x00\x00",
    ".mp4": b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00",
}


def _text(rng: random.Random, words: int) -> str:
    picked = rng.choices(_WORDS, k=words)  # one call: per-word rng calls dominated the build
    lines = [" ".join(picked[i : i + 12]).capitalize() + "." for i in range(0, words, 12)]
    return "\n".join(lines) + "\n"


def _ints(rng: random.Random, low: int, high: int, count: int) -> list[int]:
    """`count` integers in [low, high], drawn in one call (randint per value is slow)."""
    return rng.choices(range(low, high + 1), k=count)


def _binary(rng: random.Random, suffix: str, size: int) -> bytes:
    magic = _BINARY_MAGIC.get(suffix, b"")
    return magic + rng.randbytes(max(0, size - len(magic)))


@dataclass
class _Tree:
    """Files of one host, collected before writing: {relative path: bytes}."""

    rng: random.Random
    files: dict[str, bytes] = field(default_factory=dict)

    def add(self, path: str, content: bytes | str) -> None:
        data = content.encode("utf-8") if isinstance(content, str) else content
        if path in self.files:  # same generated name twice: "name (2).ext", like a desktop
            folder, _, base = path.rpartition("/")
            stem, dot, suffix = base.rpartition(".") if "." in base else (base, "", "")
            number = 2
            while f"{folder}/{stem} ({number}){dot}{suffix}" in self.files:
                number += 1
            path = f"{folder}/{stem} ({number}){dot}{suffix}"
        self.files[path] = data


def _etc_common(tree: _Tree, host: str, ip: str, cron: list[str], extra_hosts: str) -> None:
    tree.add("etc/hostname", f"{host}\n")
    tree.add(
        "etc/hosts",
        f"127.0.0.1\tlocalhost\n{ip}\t{host}.demo-estate.lan {host}\n{extra_hosts}"
        "::1\tlocalhost ip6-localhost ip6-loopback\n",
    )
    tree.add(
        "etc/os-release",
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
        'VERSION_ID="12"\nVERSION="12 (bookworm)"\nID=debian\n',
    )
    tree.add(
        "etc/ssh/sshd_config",
        "Include /etc/ssh/sshd_config.d/*.conf\nPort 22\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM yes\n"
        "X11Forwarding no\nPrintMotd no\nAcceptEnv LANG LC_*\n"
        "Subsystem sftp /usr/lib/openssh/sftp-server\n",
    )
    tree.add(
        "etc/crontab",
        "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n\n"
        "# m h dom mon dow user\tcommand\n"
        "17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly\n"
        "25 6\t* * *\troot\ttest -x /usr/sbin/anacron || run-parts --report /etc/cron.daily\n"
        "47 6\t* * 7\troot\ttest -x /usr/sbin/anacron || run-parts --report /etc/cron.weekly\n",
    )
    tree.add("etc/cron.d/demo-estate", "# Tâches planifiées du client\n" + "\n".join(cron) + "\n")
    tree.add(
        "etc/logrotate.d/demo-estate",
        "/var/log/demo-estate/*.log {\n\tweekly\n\trotate 12\n\tcompress\n\tmissingok\n}\n",
    )


def _web01(tree: _Tree) -> None:
    rng = tree.rng
    _etc_common(
        tree,
        "web01",
        "10.20.0.11",
        [
            "*/5 * * * * www-data php /var/www/demo-estate/cron.php >/dev/null 2>&1",
            "0 3 * * * root /usr/local/bin/purge-uploads --older-than 365",
        ],
        "10.20.0.12\tdb01.demo-estate.lan db01\n",
    )
    tree.add(
        "etc/nginx/nginx.conf",
        "user www-data;\nworker_processes auto;\npid /run/nginx.pid;\n\nevents {\n"
        "\tworker_connections 768;\n}\n\nhttp {\n\tsendfile on;\n\ttcp_nopush on;\n"
        "\tinclude /etc/nginx/mime.types;\n\tssl_protocols TLSv1.2 TLSv1.3;\n"
        "\taccess_log /var/log/nginx/access.log;\n\tinclude /etc/nginx/sites-enabled/*;\n}\n",
    )
    site = (
        "server {\n\tlisten 80;\n\tserver_name www.demo-estate.example;\n"
        "\treturn 301 https://$host$request_uri;\n}\n\nserver {\n"
        "\tlisten 443 ssl http2;\n\tserver_name www.demo-estate.example;\n"
        "\tssl_certificate /etc/ssl/demo/www.demo-estate.example.pem;\n"
        "\tssl_certificate_key /etc/ssl/demo/private/www.demo-estate.example.key;\n"
        "\troot /var/www/demo-estate;\n\tindex index.php index.html;\n\n"
        "\tlocation / {\n\t\ttry_files $uri $uri/ /index.php?$query_string;\n\t}\n"
        "\tlocation ~ \\.php$ {\n\t\tinclude snippets/fastcgi-php.conf;\n"
        "\t\tfastcgi_pass unix:/run/php/php8.2-fpm.sock;\n\t}\n}\n"
    )
    tree.add("etc/nginx/sites-available/demo-estate.conf", site)
    tree.add("etc/nginx/sites-enabled/demo-estate.conf", site)  # a copy: no symlinks
    tree.add(
        "etc/php/8.2/fpm/pool.d/www.conf",
        "[www]\nuser = www-data\ngroup = www-data\nlisten = /run/php/php8.2-fpm.sock\n"
        "pm = dynamic\npm.max_children = 10\npm.start_servers = 2\n",
    )
    app = "var/www/demo-estate"
    tree.add(
        f"{app}/index.php",
        "<?php\nrequire __DIR__ . '/includes/bootstrap.php';\n$page = $_GET['p'] ?? 'accueil';\n"
        "render('layout', ['page' => $page]);\n",
    )
    tree.add(
        f"{app}/includes/config.php",
        "<?php\nreturn [\n    'db_host' => 'db01.demo-estate.lan',\n    'db_name' => 'demo',\n"
        "    'db_user' => 'demo_app',\n    'db_password' => getenv('DEMO_DB_PASSWORD'),\n];\n",
    )
    for name in ("bootstrap", "db", "auth", "render", "mailer", "csrf", "upload", "i18n"):
        body = "\n".join(
            f"function {name}_{rng.choice(_WORDS[:20])}_{i}() {{ return {rng.randint(0, 99)}; }}"
            for i in range(rng.randint(5, 30))
        )
        tree.add(f"{app}/includes/{name}.php", f"<?php\n// {name}\n{body}\n")
    for page in ("accueil", "services", "équipe", "contact", "mentions-légales", "actualités"):
        tree.add(
            f"{app}/pages/{page}.html",
            f'<!doctype html>\n<html lang="fr"><head><meta charset="utf-8">'
            f"<title>{page}</title></head>\n<body><h1>{page.capitalize()}</h1>\n<p>"
            + _text(rng, rng.randint(80, 400)).replace("\n", "</p>\n<p>")
            + "</p></body></html>\n",
        )
    for i in range(12):
        rules = "".join(
            f".c{i}-{j} {{ margin: {rng.randint(0, 40)}px; color: #{rng.randbytes(3).hex()}; }}\n"
            for j in range(rng.randint(20, 120))
        )
        tree.add(f"{app}/assets/css/style-{i:02d}.css", rules)
    for i in range(15):
        code = "".join(
            f"export function f{j}(x) {{ return x * {rng.randint(1, 9)} + {j}; }}\n"
            for j in range(rng.randint(10, 80))
        )
        tree.add(f"{app}/assets/js/module-{i:02d}.js", code)
    for i in range(60):
        suffix = rng.choice([".png", ".jpg"])
        tree.add(
            f"{app}/assets/img/photo-{i:03d}{suffix}",
            _binary(rng, suffix, rng.randint(2_000, 60_000)),
        )
    for month in range(1, 13):
        for i in range(rng.randint(3, 10)):
            suffix = rng.choice([".jpg", ".pdf", ".png"])
            tree.add(
                f"{app}/uploads/2025/{month:02d}/document-{i:02d}{suffix}",
                _binary(rng, suffix, rng.randint(5_000, 120_000)),
            )
    tree.add(f"{app}/uploads/.gitkeep", b"")
    tree.add(f"{app}/cron.php", "<?php\n// purge des sessions expirées\n")


def _demo_sql(rng: random.Random) -> str:
    out = [
        "-- PostgreSQL database dump\n"
        "-- Dumped from database version 15.8 (Debian 15.8-0+deb12u1)\n",
        "SET statement_timeout = 0;\nSET client_encoding = 'UTF8';\n",
        "CREATE TABLE public.clients (\n    id integer PRIMARY KEY,\n    nom text NOT NULL,\n"
        "    ville text,\n    email text,\n    cree_le date NOT NULL\n);\n",
        "CREATE TABLE public.commandes (\n    id integer PRIMARY KEY,\n"
        "    client_id integer REFERENCES public.clients(id),\n    montant_cents bigint NOT NULL,\n"
        "    statut text NOT NULL,\n    passee_le timestamp with time zone NOT NULL\n);\n",
        "CREATE TABLE public.factures (\n    numero text PRIMARY KEY,\n"
        "    commande_id integer REFERENCES public.commandes(id),\n"
        "    payee boolean NOT NULL\n);\n\n",
    ]
    cities = ["Lyon", "Saint-Étienne", "Villeurbanne", "Annecy", "Grenoble", "Chambéry", "Vienne"]
    out.append("COPY public.clients (id, nom, ville, email, cree_le) FROM stdin;\n")
    for i in range(1, 4001):
        name = f"{rng.choice(_CLIENTS)} {i}"
        out.append(
            f"{i}\t{name}\t{rng.choice(cities)}\tcontact{i}@client{i % 97}.example\t"
            f"20{rng.randint(15, 25)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}\n"
        )
    out.append(
        "\\.\n\nCOPY public.commandes (id, client_id, montant_cents, statut, passee_le)"
        " FROM stdin;\n"
    )
    statuses = ["livrée", "en cours", "annulée", "facturée"]
    rows = 40_000
    clients, amounts = _ints(rng, 1, 4000, rows), _ints(rng, 500, 2_000_000, rows)
    states = rng.choices(statuses, k=rows)
    months, days = _ints(rng, 1, 12, rows), _ints(rng, 1, 28, rows)
    hours, minutes = _ints(rng, 8, 19, rows), _ints(rng, 0, 59, rows)
    out.extend(
        f"{i + 1}\t{clients[i]}\t{amounts[i]}\t{states[i]}\t"
        f"2025-{months[i]:02d}-{days[i]:02d} {hours[i]:02d}:{minutes[i]:02d}:00+01\n"
        for i in range(rows)
    )
    out.append("\\.\n\nCOPY public.factures (numero, commande_id, payee) FROM stdin;\n")
    for i in range(1, 30001):
        out.append(f"F2025-{i:06d}\t{i}\t{'t' if rng.random() < 0.9 else 'f'}\n")
    out.append("\\.\n\n-- PostgreSQL database dump complete\n")
    return "".join(out)


def _db01(tree: _Tree) -> None:
    _etc_common(
        tree,
        "db01",
        "10.20.0.12",
        [
            "30 1 * * * postgres pg_dump demo > /var/backups/db/demo.sql",
            "0 4 * * 0 postgres vacuumdb --all --analyze-in-stages",
        ],
        "10.20.0.11\tweb01.demo-estate.lan web01\n",
    )
    tree.add(
        "etc/postgresql/15/main/postgresql.conf",
        "data_directory = '/var/lib/postgresql/15/main'\nlisten_addresses = '10.20.0.12'\n"
        "port = 5432\nmax_connections = 100\nshared_buffers = 512MB\nssl = on\n"
        "ssl_cert_file = '/etc/ssl/demo/db01.demo-estate.lan.pem'\n"
        "log_timezone = 'Europe/Paris'\ndatestyle = 'iso, dmy'\nlc_messages = 'fr_FR.UTF-8'\n",
    )
    tree.add(
        "etc/postgresql/15/main/pg_hba.conf",
        "local   all   postgres                 peer\n"
        "hostssl demo  demo_app  10.20.0.11/32  scram-sha-256\n",
    )
    tree.add("var/backups/db/demo.sql", _demo_sql(tree.rng))


def _files01(tree: _Tree) -> None:
    rng = tree.rng
    _etc_common(
        tree,
        "files01",
        "10.20.0.13",
        ["15 2 * * * root /usr/local/bin/shadow-copies --keep 14"],
        "",
    )
    tree.add(
        "etc/samba/smb.conf",
        "[global]\n   workgroup = DEMO\n   server string = Partages Demo Estate\n"
        "   server min protocol = SMB3\n\n"
        + "".join(
            f"[{dept}]\n   path = /srv/shares/{dept}\n   read only = no\n"
            f"   valid users = @{dept.split()[0].lower()}\n\n"
            for dept in _DEPARTMENTS
        ),
    )
    base = "srv/shares"
    tree.add(f"{base}/Direction/Réunions/Compte-rendu réunion été.txt", _text(rng, 300))
    tree.add(f'{base}/Direction/Lisez-moi "important".txt', "Ne pas supprimer ce dossier.\n")
    tree.add(f"{base}/Commercial/L'offre d'automne — version finale.txt", _text(rng, 200))
    tree.add(f"{base}/Technique/À compléter.txt", b"")
    templates: list[tuple[str, Callable[[], bytes | str]]] = [
        ("Compte-rendu réunion {month} {year}.txt", lambda: _text(rng, rng.randint(50, 600))),
        ("Note de service n°{n}.md", lambda: "# Note\n\n" + _text(rng, rng.randint(30, 300))),
        (
            "Budget {year} v{v}.csv",
            lambda: (
                "poste;montant\n"
                + "".join(f"{rng.choice(_WORDS)};{rng.randint(100, 99999)}\n" for _ in range(40))
            ),
        ),
        ('Contrat "{client}".txt', lambda: _text(rng, rng.randint(200, 900))),
        ("Devis {client} {n}.pdf", lambda: _binary(rng, ".pdf", rng.randint(3_000, 40_000))),
        ("Présentation {client}.pptx", lambda: _binary(rng, ".pptx", rng.randint(8_000, 60_000))),
        (
            "Tableau de suivi {month}.xlsx",
            lambda: _binary(rng, ".xlsx", rng.randint(4_000, 30_000)),
        ),
        ("Lettre à {client}.docx", lambda: _binary(rng, ".docx", rng.randint(3_000, 25_000))),
        ("Photo chantier {n}.jpg", lambda: _binary(rng, ".jpg", rng.randint(10_000, 90_000))),
        ("brouillon {n}.txt", lambda: b""),
    ]
    weights = [14, 10, 8, 8, 10, 4, 6, 8, 6, 2]
    projects = ["Migration messagerie", "Nouveau site", "Déménagement Lyon", "ERP 2026"]
    count = len([p for p in tree.files if p.startswith(base)])
    while count < SHARES_SMALL_FILES:
        dept = rng.choice(_DEPARTMENTS)
        topic = rng.choice(_TOPICS)
        folder = f"{base}/{dept}/{topic}"
        if topic == "Projets":
            folder += f"/{rng.choice(projects)}"
        if rng.random() < 0.5:
            folder += f"/{rng.randint(2021, 2026)}"
        pattern, make = rng.choices(templates, weights)[0]
        name = pattern.format(
            month=rng.choice(_MONTHS),
            year=rng.randint(2021, 2026),
            n=rng.randint(1, 999),
            v=rng.randint(1, 5),
            client=rng.choice(_CLIENTS),
        )
        tree.add(f"{folder}/{name}", make())
        count += 1
    # A few larger files, of a few MB each.
    tree.add(f"{base}/Marketing/Vidéo salon 2025.mp4", _binary(rng, ".mp4", 6_000_000))
    tree.add(f"{base}/Direction/Archives/Archives 2019-2022.zip", _binary(rng, ".zip", 4_500_000))
    tree.add(
        f"{base}/Comptabilité/Grand livre 2025.csv",
        _ledger(rng, 45_000),
    )


def _ledger(rng: random.Random, rows: int) -> str:
    months, days = _ints(rng, 1, 12, rows), _ints(rng, 1, 28, rows)
    accounts, cents = _ints(rng, 401, 799, rows), _ints(rng, 1, 999_999, rows)
    clients = rng.choices(_CLIENTS, k=rows)
    return "date;compte;tiers;montant\n" + "".join(
        f"2025-{months[i]:02d}-{days[i]:02d};{accounts[i]};{clients[i]};{cents[i] / 100:.2f}\n"
        for i in range(rows)
    )


_BUILDERS: dict[str, Callable[[_Tree], None]] = {
    "web01": _web01,
    "db01": _db01,
    "files01": _files01,
}
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


def generate_host_files(host: str) -> dict[str, bytes]:
    """The files of one demo host, {path relative to its root: content}, certificates aside.

    Pure and deterministic: the same bytes on every machine and every run.
    """
    tree = _Tree(random.Random(f"{SEED}:{host}"))
    _BUILDERS[host](tree)
    return tree.files


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


# --------------------------------------------------------------------------- keys


class DemoKeys(BaseModel):
    """Paths of the demo's keys (all files 0600 in a 0700 folder)."""

    model_config = ConfigDict(frozen=True)

    folder: Path
    client_key: Path
    client_recipients: Path
    backup_key: Path
    backup_recipients: Path
    signing_key: Path
    signing_pub: Path
    created: list[str]  # names of the files written by this call (empty when all existed)


def _age_identity_files(key_path: Path, recipients_path: Path, created: list[str]) -> None:
    from handover.bundle.age import X25519Identity, load_identities

    if key_path.exists():
        identities = load_identities(key_path)
        public = str(identities[0].recipient())  # type: ignore[attr-defined]
    else:
        identity = X25519Identity.generate()
        public = str(identity.recipient())
        stamp = datetime.now(UTC).replace(microsecond=0).isoformat()
        text = f"# created: {stamp}\n# public key: {public}\n{identity}\n"
        write_atomic(key_path, text.encode(), mode=0o600)
        created.append(key_path.name)
    if not recipients_path.exists():
        write_atomic(recipients_path, f"{public}\n".encode(), mode=0o600)
        created.append(recipients_path.name)


def make_demo_keys(keys_dir: Path) -> DemoKeys:
    """Generate, once, the demo's client age identity, backup identity and signing key.

    `client.key`/`client.recipients` (what the client decrypts the bundle with),
    `backup.key`/`backup.recipients` (the provider's backup key),
    `provider-signing`/`provider-signing.pub` (OpenSSH Ed25519, signs SHA256SUMS).
    Existing files are kept; a missing public half is derived from its private key.
    """
    from handover.bundle.sshsig import SigningKey

    folder = Path(keys_dir).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    created: list[str] = []
    _age_identity_files(folder / "client.key", folder / "client.recipients", created)
    _age_identity_files(folder / "backup.key", folder / "backup.recipients", created)
    signing_path = folder / "provider-signing"
    pub_path = folder / "provider-signing.pub"
    if signing_path.exists():
        key = SigningKey.load(signing_path)
    else:
        key = SigningKey.generate()
        write_atomic(signing_path, key.private_openssh(), mode=0o600)
        created.append(signing_path.name)
    if not pub_path.exists():
        write_atomic(pub_path, (key.public_line("demo-provider") + "\n").encode(), mode=0o600)
        created.append(pub_path.name)
    return DemoKeys(
        folder=folder,
        client_key=folder / "client.key",
        client_recipients=folder / "client.recipients",
        backup_key=folder / "backup.key",
        backup_recipients=folder / "backup.recipients",
        signing_key=signing_path,
        signing_pub=pub_path,
        created=created,
    )
