"""parse_inventory on captured outputs, and the real script under dash."""

from __future__ import annotations

import base64
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from handover.estate.eol import eol_flags
from handover.estate.inventory import Package
from handover.estate.inventory_collect import INVENTORY_SCRIPT, inventory_command
from handover.estate.inventory_parser import parse_inventory
from tests.conftest import require_binary

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def make_cert(cn: str, not_after: datetime) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - timedelta(days=365))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )


def piped(text: str) -> str:
    return "\n".join("|" + line for line in text.splitlines())


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def debian_output() -> str:
    web = make_cert("www.acme.example", NOW + timedelta(days=10, hours=1))
    chain = pem(make_cert("acme.example", NOW + timedelta(days=400))) + pem(
        make_cert("Acme Intermediate", NOW + timedelta(days=900))
    )
    return f"""==handover:section os_release==
|PRETTY_NAME="Debian GNU/Linux 10 (buster)"
|NAME="Debian GNU/Linux"
|VERSION_ID="10"
|VERSION="10 (buster)"
|ID=debian
==handover:section system==
kernel=4.19.0-27-amd64
arch=x86_64
hostname=web01
==handover:section packages==
==handover:meta manager dpkg==
ii \tnginx\t1.14.2-2+deb10u5
ii \tphp7.3-fpm\t7.3.31-1~deb10u5
ii \tphp7.3-cli\t7.3.31-1~deb10u5
rc \told-removed\t1.0
ii \tlibssl1.1\t1.1.1n-0+deb10u6
ii \tpython2.7\t2.7.16-2+deb10u1
ii \tbash\t5.0-4
ii \tbash\t5.0-4
==handover:section services==
==handover:meta tool systemd==
nginx.service loaded active running A high performance web server
php7.3-fpm.service loaded active running The PHP 7.3 FastCGI Process Manager
cron.service loaded active running Regular background program processing daemon
apt-daily.service loaded inactive dead Daily apt download activities
==handover:section listening==
==handover:meta tool ss==
Netid State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess
udp UNCONN 0 0 127.0.0.53%lo:53 0.0.0.0:* users:(("systemd-resolve",pid=501,fd=12))
tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:(("nginx",pid=900,fd=6),("nginx",pid=901,fd=6))
tcp   LISTEN 0      128          0.0.0.0:22         0.0.0.0:*    users:(("sshd",pid=700,fd=3))
tcp   LISTEN 0      511             [::]:443           [::]:*
==handover:section disks==
==handover:meta unit 1==
Filesystem     1-blocks       Used  Available Capacity Mounted on
/dev/sda1   20000000000 18500000000 1500000000      93% /
tmpfs        1000000000          0 1000000000       0% /run
/dev/sdb1  100000000000 10000000000 90000000000     10% /srv/data share
==handover:file /proc/mounts==
|/dev/sda1 / ext4 rw,relatime 0 0
|tmpfs /run tmpfs rw 0 0
|/dev/sdb1 /srv/data\\040share xfs rw 0 0
==handover:section users==
|root:x:0:0:root:/root:/bin/bash
|daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
|www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
|alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash
==handover:section cron==
==handover:file /etc/crontab==
|SHELL=/bin/sh
|# m h dom mon dow user  command
|17 *    * * *   root    cd / && run-parts --report /etc/cron.hourly
|
==handover:file /etc/cron.d/backup==
|30 2 * * * root /usr/local/bin/backup.sh
|==handover:section users==
==handover:unreadable cron: /var/spool/cron/crontabs: permission denied==
==handover:section certificates==
==handover:file /etc/ssl/acme/www.pem==
{piped(pem(web))}
==handover:file /etc/ssl/acme/chain.crt==
{piped(chain)}
==handover:file /etc/ssl/acme/copy-of-www.pem==
{piped(pem(web))}
==handover:end==
"""


def test_parse_debian_output_reads_every_section() -> None:
    inv = parse_inventory("web01", debian_output(), now=NOW)

    assert inv.host == "web01" and inv.collected_at == NOW
    assert inv.os_release["ID"] == "debian" and inv.os_name == "Debian GNU/Linux 10 (buster)"
    assert (inv.kernel, inv.arch, inv.hostname) == ("4.19.0-27-amd64", "x86_64", "web01")
    assert inv.package_manager == "dpkg"
    names = [p.name for p in inv.packages]
    assert "nginx" in names and "old-removed" not in names and len(names) == 6
    assert {s.name: s.state for s in inv.services}["apt-daily"] == "dead"
    assert {s.name: s.state for s in inv.services}["nginx"] == "running"
    ports = {(p.proto, p.address, p.port): p.process for p in inv.listening}
    assert ports[("tcp", "0.0.0.0", 80)] == "nginx"
    assert ports[("tcp", "::", 443)] is None
    assert ports[("udp", "127.0.0.53", 53)] == "systemd-resolve"
    disks = {d.mount: d for d in inv.disks}
    assert set(disks) == {"/", "/srv/data share"}  # tmpfs left out
    assert disks["/"].fstype == "ext4" and disks["/"].used_percent == 92.5
    assert disks["/srv/data share"].fstype == "xfs"
    assert [u.name for u in inv.users if u.is_human] == ["root", "alice"]
    assert len(inv.users) == 4
    # Comments, blank lines and variable assignments are not entries; a forged marker
    # inside a crontab ("|==handover:...") stays data of that crontab.
    assert [(c.source, c.line) for c in inv.cron] == [
        ("/etc/crontab", "17 *    * * *   root    cd / && run-parts --report /etc/cron.hourly"),
        ("/etc/cron.d/backup", "30 2 * * * root /usr/local/bin/backup.sh"),
        ("/etc/cron.d/backup", "==handover:section users=="),
    ]
    assert "cron: /var/spool/cron/crontabs: permission denied" in inv.unreadable


def test_parse_certificates_with_expiry_and_dedup() -> None:
    inv = parse_inventory("web01", debian_output(), now=NOW)

    by_subject = {c.subject: c for c in inv.certificates}
    assert set(by_subject) == {"CN=www.acme.example", "CN=acme.example", "CN=Acme Intermediate"}
    www = by_subject["CN=www.acme.example"]
    assert www.days_left == 10 and www.path == "/etc/ssl/acme/www.pem"  # first path wins
    assert www.not_after == NOW + timedelta(days=10, hours=1)
    assert by_subject["CN=Acme Intermediate"].path == "/etc/ssl/acme/chain.crt"
    assert by_subject["CN=acme.example"].days_left == 400


def test_eol_flags_for_old_debian_and_packages() -> None:
    inv = parse_inventory("web01", debian_output(), now=NOW)

    flags = "\n".join(inv.eol_flags)
    assert inv.eol_flags[0].startswith("os: Debian GNU/Linux 10 (buster): end of life since 2024")
    assert "PHP 7" in flags and "php7.3-fpm" in flags and "php7.3-cli" in flags
    assert "Python 2" in flags and "OpenSSL 1.0/1.1" in flags
    assert "nginx" not in flags and "bash" not in flags


def test_eol_flags_respect_dates_and_versions() -> None:
    def os_flags(distro: str, version: str, today: date) -> list[str]:
        return eol_flags({"ID": distro, "VERSION_ID": version}, [], today)

    assert os_flags("debian", "12", date(2026, 11, 27)) == []
    assert os_flags("debian", "11", date(2026, 1, 1)) == []
    assert os_flags("debian", "11", date(2026, 11, 27)) != []
    assert os_flags("debian", "7", date(2026, 1, 1)) != []  # older than the table
    assert os_flags("ubuntu", "18.04", date(2026, 1, 1)) != []
    assert os_flags("ubuntu", "24.04", date(2026, 1, 1)) == []
    assert os_flags("alpine", "3.16.9", date(2026, 1, 1)) != []
    assert os_flags("alpine", "3.22.1", date(2026, 1, 1)) == []
    assert os_flags("centos", "7", date(2026, 1, 1)) != []
    assert os_flags("rhel", "9.4", date(2026, 1, 1)) == []
    pkgs = [
        Package(name="mysql-server", version="5.7.44-1"),
        Package(name="openssl", version="3.0.15-1"),
        Package(name="nodejs", version="16.20.2"),
    ]
    flags = eol_flags({}, pkgs, date(2026, 1, 1))
    assert any("MySQL 5" in f for f in flags) and any("Node.js" in f for f in flags)
    assert not any("OpenSSL" in f for f in flags)


def alpine_output(cert_der: bytes) -> str:
    der_b64 = base64.encodebytes(cert_der).decode()
    return f"""==handover:section os_release==
|NAME="Alpine Linux"
|ID=alpine
|VERSION_ID=3.16.9
|PRETTY_NAME="Alpine Linux v3.16"
==handover:section system==
kernel=5.15.0
arch=aarch64
hostname=files01
==handover:section packages==
==handover:meta manager apk==
ii\tbusybox\t1.35.0-r18
ii\tmusl\t1.2.3-r3
==handover:section services==
==handover:unreadable services: no systemd, OpenRC or /etc/init.d==
==handover:section listening==
==handover:meta tool proc==
==handover:file /proc/net/tcp==
|  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
|   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
|   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1
|   2: 0100007F:A1B2 0100007F:0016 01 00000000:00000000 00:00000000 00000000     0        0 3 1
==handover:file /proc/net/tcp6==
|  sl  local_address                         remote_address                        st
|   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 0
==handover:file /proc/net/udp==
|  sl  local_address rem_address   st
|   0: 00000000:0044 00000000:0000 07 0
==handover:section disks==
==handover:meta unit 1024==
Filesystem           1024-blocks    Used Available Capacity Mounted on
/dev/vda              1000000    500000    500000  50% /
==handover:section users==
==handover:unreadable users: /etc/passwd: not readable==
==handover:section cron==
==handover:section certificates==
==handover:file /etc/ssl/files01/server.cer==
==handover:meta encoding der==
{piped(der_b64)}
==handover:file /etc/ssl/files01/broken.pem==
|-----BEGIN CERTIFICATE-----
|bm90IGEgY2VydGlmaWNhdGU=
|-----END CERTIFICATE-----
==handover:unreadable certificates: /etc/ssl/private: permission denied==
==handover:end==
"""


def test_parse_busybox_output_with_missing_tools() -> None:
    cert = make_cert("files01.acme.example", NOW - timedelta(days=3))
    inv = parse_inventory(
        "files01", alpine_output(cert.public_bytes(serialization.Encoding.DER)), now=NOW
    )

    assert inv.package_manager == "apk" and [p.name for p in inv.packages] == ["busybox", "musl"]
    assert inv.services == [] and inv.users == []
    assert "services: no systemd, OpenRC or /etc/init.d" in inv.unreadable
    assert "users: /etc/passwd: not readable" in inv.unreadable
    assert "certificates: /etc/ssl/private: permission denied" in inv.unreadable
    assert "certificates: /etc/ssl/files01/broken.pem: not an X.509 certificate" in inv.unreadable
    ports = {(p.proto, p.address, p.port) for p in inv.listening}
    assert ports == {
        ("tcp", "0.0.0.0", 22),
        ("tcp", "127.0.0.1", 8080),
        ("tcp", "::1", 80),
        ("udp", "0.0.0.0", 68),
    }
    assert inv.disks[0].size_bytes == 1000000 * 1024 and inv.disks[0].used_percent == 50.0
    assert len(inv.certificates) == 1 and inv.certificates[0].days_left == -3  # expired
    assert inv.eol_flags and inv.eol_flags[0].startswith("os: Alpine Linux v3.16")


def test_truncated_output_is_reported() -> None:
    text = debian_output()
    inv = parse_inventory("web01", text[: text.index("==handover:section users==")], now=NOW)

    assert any("truncated" in note for note in inv.unreadable)
    assert inv.packages and inv.users == []


def test_garbage_output_never_raises() -> None:
    inv = parse_inventory("x", "sh: 1: syntax error\n", now=NOW)
    assert inv.packages == [] and any("truncated" in n for n in inv.unreadable)


def test_inventory_command_quotes_paths() -> None:
    assert inventory_command(["/etc/ssl", "/srv/my certs", "/x'; rm -rf /"]) == (
        "sh -s -- /etc/ssl '/srv/my certs' '/x'\"'\"'; rm -rf /'"
    )


def test_real_script_under_dash_with_tricky_cert_paths(tmp_path: Path) -> None:
    dash = require_binary("dash", "dash")
    folder = tmp_path / "certs with 'quotes' and spaces"
    (folder / "sub").mkdir(parents=True)
    soon = make_cert("soon.example", datetime.now(UTC) + timedelta(days=5, hours=1))
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    # A key file beside the certificate, and a key inside a certificate file: neither is printed.
    (folder / "sub" / "soon.pem").write_text(key_pem + pem(soon))
    (folder / "server.key.pem").write_text(key_pem)
    (folder / "der.cer").write_bytes(soon.public_bytes(serialization.Encoding.DER))
    missing = tmp_path / "nope"

    done = subprocess.run(
        [dash, "-s", "--", str(folder), str(missing)],
        input=INVENTORY_SCRIPT.encode(),
        capture_output=True,
        check=True,
        timeout=120,
    )
    text = done.stdout.decode()
    assert "PRIVATE KEY" not in text
    inv = parse_inventory("me", text)
    assert [c.subject for c in inv.certificates] == ["CN=soon.example"]  # DER copy deduplicated
    assert inv.certificates[0].days_left == 5
    assert f"certificates: {missing}: not found" in inv.unreadable
    assert inv.kernel and inv.arch and inv.hostname
    assert inv.users and any(u.name == "root" for u in inv.users)
    assert inv.disks, "df gave no disk"
    if shutil.which("dpkg-query"):
        assert inv.package_manager == "dpkg" and len(inv.packages) > 20


def test_real_script_under_busybox_alone_like_alpine(tmp_path: Path) -> None:
    """Only busybox applets on PATH and an apk database: the facts still come out."""
    busybox = require_binary("busybox", "busybox")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    for applet in applets.stdout.split():
        (bindir / applet).symlink_to(busybox)
    apk_db = tmp_path / "installed"
    apk_db.write_text(
        "C:Q1abc=\nP:musl\nV:1.2.3-r3\nA:x86_64\n\nC:Q1def=\nP:busybox\nV:1.35.0-r18\n"
    )
    script = INVENTORY_SCRIPT.replace(
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH", f"PATH={bindir}"
    ).replace("/lib/apk/db/installed", str(apk_db))
    assert script.count(str(apk_db)) == 2 and f"PATH={bindir}" in script
    cert = make_cert("files01.example", datetime.now(UTC) + timedelta(days=100, hours=1))
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "a.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    done = subprocess.run(
        [busybox, "sh", "-s", "--", str(tmp_path / "certs")],
        input=script.encode(),
        capture_output=True,
        check=True,
        timeout=120,
    )
    text = done.stdout.decode()
    inv = parse_inventory("files01", text)

    assert "==handover:end==" in text
    assert inv.package_manager == "apk"
    assert [(p.name, p.version) for p in inv.packages] == [
        ("busybox", "1.35.0-r18"),
        ("musl", "1.2.3-r3"),
    ]
    assert not any(n.startswith("listening") for n in inv.unreadable)
    assert inv.disks and inv.users and inv.kernel
    assert [(c.subject, c.days_left) for c in inv.certificates] == [("CN=files01.example", 100)]
    # Without the apk database either (and busybox's useless `rpm` applet), packages are a gap.
    no_db = script.replace(str(apk_db), str(tmp_path / "absent"))
    done = subprocess.run(
        [busybox, "sh", "-s"], input=no_db.encode(), capture_output=True, check=True, timeout=120
    )
    inv = parse_inventory("files01", done.stdout.decode())
    assert inv.package_manager is None and inv.packages == []
    assert "packages: no dpkg-query, rpm or apk database that answers" in inv.unreadable
