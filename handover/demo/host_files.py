"""What the demo's sandbox hosts hold: realistic, deterministic file trees, certificates aside.

web01 has configs under /etc (nginx, PHP-FPM, cron lines) and a web
application under /var/www; db01 a PostgreSQL configuration and a SQL dump
under /var/backups/db; files01 Samba department shares under /srv/shares
with thousands of files, French names with accents, spaces, quotes and
apostrophes, empty files and a few larger ones. Every host has the common
/etc files (hostname, hosts, sshd_config, crontab).

Pure and seeded: `generate_host_files(host)` returns the same bytes on
every machine and every run, so two sites build the same estate and a
damaged host can be rebuilt alone. Writing the trees is
`handover.demo.estate`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

SEED = "handover-demo-estate"
HOSTS = ("web01", "db01", "files01")
SHARES_SMALL_FILES = 3000


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


# What each host has installed, as its dpkg status file lists it: a sandbox host's inventory
# reads its packages here (and the end-of-life check its versions), never the demo machine's.
_BASE_PACKAGES = [
    ("base-files", "12.4+deb12u5"),
    ("bash", "5.2.15-2+b2"),
    ("coreutils", "9.1-1"),
    ("cron", "3.0pl1-162"),
    ("libc6", "2.36-9+deb12u7"),
    ("openssh-server", "1:9.2p1-2+deb12u3"),
    ("openssl", "3.0.13-1~deb12u1"),
    ("sudo", "1.9.13p3-1+deb12u1"),
]
_HOST_PACKAGES: dict[str, list[tuple[str, str]]] = {
    "web01": [("nginx", "1.22.1-9"), ("php8.2-fpm", "8.2.20-1~deb12u1")],
    "db01": [("postgresql-15", "15.7-0+deb12u1"), ("postgresql-client-15", "15.7-0+deb12u1")],
    "files01": [("samba", "2:4.17.12+dfsg-0+deb12u1")],
}
_PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
    "sshd:x:105:65534::/run/sshd:/usr/sbin/nologin\n"
    "postgres:x:106:112:PostgreSQL administrator:/var/lib/postgresql:/bin/bash\n"
    "nicolas:x:1000:1000:Nicolas Petit:/home/nicolas:/bin/bash\n"
)


def _dpkg_status(host: str) -> str:
    stanzas = [
        f"Package: {name}\nStatus: install ok installed\nPriority: optional\n"
        f"Architecture: amd64\nVersion: {version}\nDescription: {name}\n"
        for name, version in sorted(_BASE_PACKAGES + _HOST_PACKAGES[host])
    ]
    return "\n".join(stanzas)


def _etc_common(tree: _Tree, host: str, ip: str, cron: list[str], extra_hosts: str) -> None:
    tree.add("etc/hostname", f"{host}\n")
    tree.add("etc/passwd", _PASSWD)
    tree.add("var/lib/dpkg/status", _dpkg_status(host))
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
    _web01_server_config(tree)
    app = "var/www/demo-estate"
    _web01_code(tree, app)
    _web01_assets(tree, app)
    _web01_uploads(tree, app)


def _web01_server_config(tree: _Tree) -> None:
    """nginx (the site enabled as a copy: no symlinks) and the PHP-FPM pool."""
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


def _web01_code(tree: _Tree, app: str) -> None:
    """The PHP application: entry point, configuration, includes, pages."""
    rng = tree.rng
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


def _web01_assets(tree: _Tree, app: str) -> None:
    """Stylesheets, scripts and photos."""
    rng = tree.rng
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


def _web01_uploads(tree: _Tree, app: str) -> None:
    """A year of uploaded documents, and the cron script."""
    rng = tree.rng
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
    _shares_awkward_names(tree, base)
    _shares_bulk(tree, base)
    _shares_large(tree, base)
    _client_docs(tree, "srv/docs")


def _client_docs(tree: _Tree, base: str) -> None:
    """The client's own documentation: what the takeover collects (`documentation.sources`)."""
    tree.add(
        f"{base}/Dossier d'exploitation.md",
        "# Dossier d'exploitation — Demo Estate SARL\n\n"
        "## Serveurs\n\n- web01 : site et intranet (nginx, PHP-FPM)\n"
        "- db01 : PostgreSQL 15, sauvegarde nocturne à 01:30\n"
        "- files01 : partages Samba des services\n\n"
        "## Procédures\n\nRedémarrage de PHP-FPM : `systemctl restart php8.2-fpm`.\n",
    )
    tree.add(
        f"{base}/Schéma réseau.txt",
        "Internet -- box fibre -- pare-feu 10.20.0.1\n"
        "  10.20.0.11 web01\n  10.20.0.12 db01\n  10.20.0.13 files01\n",
    )
    tree.add(
        f"{base}/Licences/licences-2026.csv",
        "produit;éditeur;postes;échéance\nSuite bureautique;Éditeur A;12;2026-12-31\n"
        "Antivirus;Éditeur B;15;2026-09-30\n",
    )
    tree.add(
        f"{base}/Contrats tiers/Contrat copieurs.txt",
        "Contrat de location et maintenance de deux copieurs, 60 mois à compter du "
        "1er mars 2024, préavis 3 mois.\n",
    )


def _shares_awkward_names(tree: _Tree, base: str) -> None:
    """Accents, quotes, apostrophes, a dash and an empty file: names tools get wrong."""
    rng = tree.rng
    tree.add(f"{base}/Direction/Réunions/Compte-rendu réunion été.txt", _text(rng, 300))
    tree.add(f'{base}/Direction/Lisez-moi "important".txt', "Ne pas supprimer ce dossier.\n")
    tree.add(f"{base}/Commercial/L'offre d'automne — version finale.txt", _text(rng, 200))
    tree.add(f"{base}/Technique/À compléter.txt", b"")


def _shares_bulk(tree: _Tree, base: str) -> None:
    """Department shares filled up to SHARES_SMALL_FILES files from weighted name patterns."""
    rng = tree.rng
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


def _shares_large(tree: _Tree, base: str) -> None:
    """A few larger files, of a few MB each."""
    rng = tree.rng
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


def generate_host_files(host: str) -> dict[str, bytes]:
    """The files of one demo host, {path relative to its root: content}, certificates aside.

    Pure and deterministic: the same bytes on every machine and every run.
    """
    tree = _Tree(random.Random(f"{SEED}:{host}"))
    _BUILDERS[host](tree)
    return tree.files
