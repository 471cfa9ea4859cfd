"""A client opens a bundle with Debian's age, GNU tar, sha256sum and ssh-keygen only.

The commands run here are the ones README.txt inside the bundle gives: the
test parses them out of the README and runs them in bash, so the README and
the bundle cannot drift apart.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from handover.bundle.readme import COMMAND_PREFIX, KEY_PLACEHOLDER
from tests.conftest import require_binary
from tests.fixtures.peak_rss import run_measured

pytestmark = pytest.mark.integration

HANDOVER = Path(sys.executable).parent / "handover"
# The core commands without the Prefect ones: same typer app, a quicker start.
CORE = [sys.executable, "-c", "from handover.cli import main; main()"]


def handover(
    *args: str | Path, cwd: Path | None = None, console_script: bool = False
) -> subprocess.CompletedProcess[str]:
    command = [*([str(HANDOVER)] if console_script else CORE), *(str(a) for a in args)]
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


@pytest.fixture(scope="module")
def tools() -> None:
    for name, package in [
        ("age", "age"),
        ("age-keygen", "age"),
        ("tar", "tar"),
        ("sha256sum", "coreutils"),
        ("ssh-keygen", "openssh-client"),
    ]:
        require_binary(name, package)
    assert HANDOVER.exists(), f"{HANDOVER} missing: run `pip install -e .` in the venv"


def make_tree(root: Path) -> dict[str, bytes]:
    """Nested folders, empty files, unicode and odd names, sizes around tar's 512-byte blocks."""
    files = {
        "site/index.html": b"<h1>acme</h1>\n",
        "site/empty.txt": b"",
        "site/assets/css/empty-too": b"",
        "site/données/été 2026/rapport final.txt": "Résumé ✓\n".encode(),
        "site/日本語/ファイル.txt": "テキスト".encode(),
        "site/" + "long-" * 30 + "/name-" * 10 + ".bin": os.urandom(1000),
        "site/blocks/511": os.urandom(511),
        "site/blocks/512": os.urandom(512),
        "site/blocks/513": os.urandom(513),
        "site/blocks/big": os.urandom(3 * 1024 * 1024 + 17),
    }
    for i in range(300):
        files[f"site/many/f{i:03d}"] = os.urandom(i * 3)
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "site" / "empty-folder").mkdir()
    return files


def client_keys(folder: Path) -> tuple[Path, str, Path, str]:
    """An age identity made by Debian's age-keygen and an SSH Ed25519 key made by ssh-keygen."""
    folder.mkdir(parents=True, exist_ok=True)
    age_key = folder / "key.txt"
    subprocess.run(["age-keygen", "-o", str(age_key)], check=True, capture_output=True)
    recipient = subprocess.run(
        ["age-keygen", "-y", str(age_key)], check=True, capture_output=True, text=True
    ).stdout.strip()
    ssh_key = folder / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "client", "-f", str(ssh_key)],
        check=True,
    )
    return age_key, recipient, ssh_key, Path(f"{ssh_key}.pub").read_text().strip()


def readme_commands(text: str) -> list[str]:
    """The shell commands of a README.txt, in order (what a client would type)."""
    return [
        line[len(COMMAND_PREFIX) :] for line in text.splitlines() if line.startswith(COMMAND_PREFIX)
    ]


def run_readme(bundle: Path, key: Path) -> str:
    """Run README.txt's commands in bash from inside the bundle, as a client would."""
    commands = readme_commands((bundle / "README.txt").read_text())
    assert any(c.startswith("ssh-keygen -Y verify") for c in commands)
    assert any(c.startswith("sha256sum -c SHA256SUMS") for c in commands)
    script = "set -euo pipefail\n" + "\n".join(
        c.replace(KEY_PLACEHOLDER, shlex.quote(str(key))) for c in commands
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=bundle, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"README commands failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def sha_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def sealed(tools: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    base = tmp_path_factory.mktemp("bundle-tools")
    source = base / "source"
    make_tree(source)
    single = base / "dump" / "acme db.dump"
    single.parent.mkdir()
    single.write_bytes(os.urandom(200_000))
    age_key, recipient, ssh_key, ssh_recipient = client_keys(base / "client")
    signing = base / "provider" / "signing"
    signing.parent.mkdir()
    made = handover("keygen", "--signing", "--out", signing)
    assert made.returncode == 0, made.stderr
    bundle = base / "bundle"
    result = handover(
        "seal", source / "site", single, "--to", recipient, "--to", ssh_recipient,
        "--sign-key", signing, "--out", bundle,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return {
        "base": base,
        "source": source,
        "single": single,
        "bundle": bundle,
        "age_key": age_key,
        "ssh_key": ssh_key,
        "signer": Path(f"{signing}.pub"),
    }


def test_readme_commands_verify_and_restore_everything_with_an_age_key(
    sealed: dict[str, Path | str], tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(sealed["bundle"], bundle)
    output = run_readme(bundle, Path(sealed["age_key"]))
    assert 'Good "handover-bundle" signature for provider' in output
    for name in ("README.txt", "index.tar.age", "provider.pub", "volumes/0001-site.tar.age"):
        assert f"{name}: OK" in output
    assert output.splitlines().count("OK") == 3  # two volumes and the index
    restored = bundle / "restored"
    original = sha_tree(Path(sealed["source"]))
    got = sha_tree(restored / "0001-site")
    got.pop("SHA256SUMS")
    assert got == original
    assert (restored / "0001-site" / "site" / "empty-folder").is_dir()
    single = Path(sealed["single"])
    assert (restored / "0002-acme-db.dump" / single.name).read_bytes() == single.read_bytes()
    assert (restored / "index" / "MANIFEST.json").is_file()


def test_readme_commands_work_with_the_client_ssh_key(
    sealed: dict[str, Path | str], tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(sealed["bundle"], bundle)
    run_readme(bundle, Path(sealed["ssh_key"]))
    assert (bundle / "restored" / "0001-site" / "site" / "index.html").read_bytes() == (
        b"<h1>acme</h1>\n"
    )


def test_handover_verify_and_open(sealed: dict[str, Path | str], tmp_path: Path) -> None:
    bundle = sealed["bundle"]
    done = handover(
        "verify", bundle, "--identity", sealed["age_key"], "--signer", sealed["signer"],
        console_script=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "every volume decrypted" in done.stdout
    # the fingerprint handover prints is the one ssh-keygen -lf gives for the provider's key
    listed = subprocess.run(
        ["ssh-keygen", "-lf", str(sealed["signer"])], capture_output=True, text=True, check=True
    )
    fingerprint = listed.stdout.split()[1]
    assert f"signed by {fingerprint}: matches the key given with --signer" in done.stdout
    into = tmp_path / "opened"
    done = handover("open", bundle, "--identity", sealed["ssh_key"], "--into", into)
    assert done.returncode == 0, done.stderr
    assert f"signed by {fingerprint} (the bundle's own provider.pub): NOT checked" in done.stdout
    got = sha_tree(into / "0001-site")
    got.pop("SHA256SUMS")
    assert got == sha_tree(Path(sealed["source"]))


def test_verify_reports_each_problem_and_exits_1(
    sealed: dict[str, Path | str], tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(sealed["bundle"], bundle)
    volume = bundle / "volumes" / "0002-acme-db.dump.tar.age"
    data = bytearray(volume.read_bytes())
    data[len(data) // 2] ^= 0x40
    volume.write_bytes(bytes(data))
    (bundle / "extra.txt").write_text("x")
    done = handover("verify", bundle, "--identity", sealed["age_key"])
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert any("volumes/0002-acme-db.dump.tar.age: SHA-256 does not match" in x for x in lines)
    assert any("failed authentication" in x for x in lines)
    assert any("extra.txt: not listed in SHA256SUMS" in x for x in lines)
    into = tmp_path / "into"
    assert handover("open", bundle, "--identity", sealed["age_key"], "--into", into).returncode == 1
    assert not into.exists()
    # Debian's age refuses the damaged volume too
    age = subprocess.run(
        ["age", "-d", "-i", str(sealed["age_key"]), str(volume)], capture_output=True
    )
    assert age.returncode != 0


def test_verify_with_the_wrong_signer_or_identity(
    sealed: dict[str, Path | str], tmp_path: Path
) -> None:
    other = tmp_path / "other"
    assert handover("keygen", "--signing", "--out", other).returncode == 0
    done = handover("verify", sealed["bundle"], "--signer", f"{other}.pub")
    assert done.returncode == 1
    assert "SHA256SUMS.sig: signature of SHA256SUMS does not verify" in done.stderr
    stranger = tmp_path / "stranger.txt"
    assert handover("keygen", "--out", stranger).returncode == 0
    done = handover("verify", sealed["bundle"], "--identity", stranger)
    assert done.returncode == 1
    assert "index.tar.age: none of the 1 identities opens this file" in done.stderr


def test_keygen_writes_an_identity_debian_age_uses(tools: None, tmp_path: Path) -> None:
    key = tmp_path / "client.key"
    done = handover("keygen", "--out", key)
    assert done.returncode == 0, done.stderr
    recipient = done.stdout.strip()
    assert recipient.startswith("age1")
    assert (key.stat().st_mode & 0o777) == 0o600
    assert f"# public key: {recipient}" in key.read_text()
    secret = subprocess.run(
        ["age", "-r", recipient], input=b"round trip", capture_output=True, check=True
    ).stdout
    plain = subprocess.run(
        ["age", "-d", "-i", str(key)], input=secret, capture_output=True, check=True
    ).stdout
    assert plain == b"round trip"
    assert handover("keygen", "--out", key).returncode == 2  # never overwrites a key


def test_signing_key_is_an_openssh_key_ssh_keygen_reads(tools: None, tmp_path: Path) -> None:
    key = tmp_path / "signing"
    assert handover("keygen", "--signing", "--out", key).returncode == 0
    assert (key.stat().st_mode & 0o777) == 0o600
    public = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(key)], capture_output=True, text=True, check=True
    ).stdout.split()[:2]
    assert Path(f"{key}.pub").read_text().split()[:2] == public


def test_seal_usage_errors_exit_2(sealed: dict[str, Path | str], tmp_path: Path) -> None:
    source = Path(sealed["source"]) / "site"
    signing = str(sealed["signer"]).removesuffix(".pub")
    recipient = subprocess.run(
        ["age-keygen", "-y", str(sealed["age_key"])], capture_output=True, text=True, check=True
    ).stdout.strip()
    cases = [
        (["--to", "age1notakey", "--sign-key", signing], "malformed age recipient"),
        (["--to-file", str(tmp_path / "none"), "--sign-key", signing], "cannot read recipients"),
        (["--sign-key", signing], "no recipient"),
        (["--to", recipient, "--sign-key", str(tmp_path / "nokey")], "cannot read signing key"),
    ]
    for extra, message in cases:
        done = handover("seal", source, *extra, "--out", tmp_path / "b")
        assert done.returncode == 2, (extra, done.stderr)
        assert message in done.stderr
        assert not (tmp_path / "b").exists()
    real = recipient
    done = handover("seal", tmp_path / "missing", "--to", real, "--sign-key", signing, "--out",
                    tmp_path / "b")  # fmt: skip
    assert done.returncode == 2 and "no such file or folder" in done.stderr
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    done = handover("seal", source, "--to", real, "--sign-key", signing, "--out", busy)
    assert done.returncode == 2 and "must be an empty folder" in done.stderr
    done = handover("verify", sealed["bundle"], "--identity", tmp_path / "missing.key")
    assert done.returncode == 2


def test_tar_failure_is_a_connector_error_naming_the_path(tools: None, tmp_path: Path) -> None:
    """A path that vanished between the command line check and tar's walk."""
    from handover.bundle.local import LocalPathSource
    from handover.bundle.snapshot import snapshot_source
    from handover.errors import ConnectorError

    (tmp_path / "present").write_text("x")
    source = LocalPathSource("x", tmp_path, ["present", "nothing-here"])
    with pytest.raises(ConnectorError, match=r"tar failed reading .*nothing-here.*No such file"):
        snapshot_source(source)


@pytest.mark.slow
def test_two_gib_file_round_trip_with_standard_tools(tools: None, tmp_path: Path) -> None:
    source = tmp_path / "source" / "data"
    source.mkdir(parents=True)
    block = os.urandom(4 << 20)
    sha = hashlib.sha256()
    with open(source / "disk.img", "wb") as handle:
        for i in range(512):  # 2 GiB of distinct blocks
            chunk = i.to_bytes(8, "big") + block[8:]
            sha.update(chunk)
            handle.write(chunk)
    (source / "small.txt").write_text("small\n")
    (source / "empty").write_bytes(b"")
    age_key, recipient, _, _ = client_keys(tmp_path / "client")
    signing = tmp_path / "signing"
    assert handover("keygen", "--signing", "--out", signing).returncode == 0
    bundle = tmp_path / "bundle"
    done = handover("seal", source, "--to", recipient, "--sign-key", signing, "--out", bundle)
    assert done.returncode == 0, done.stderr
    (source / "disk.img").unlink()  # room on disk for the restored copy
    output = run_readme(bundle, age_key)
    assert 'Good "handover-bundle" signature' in output
    restored = bundle / "restored" / "0001-data" / "data" / "disk.img"
    assert restored.stat().st_size == 2 << 30
    check = hashlib.sha256()
    with open(restored, "rb") as handle:
        while chunk := handle.read(1 << 22):
            check.update(chunk)
    assert check.hexdigest() == sha.hexdigest()
    restored.unlink()
    shutil.rmtree(bundle / "restored")
    (bundle / "allowed_signers").unlink()
    # verify and open hold nothing in proportion to the volume (#16): peak RSS under 150 MiB
    done, peak = run_measured([*CORE, "verify", bundle, "--identity", age_key])
    assert done.returncode == 0, done.stderr
    assert peak <= 150, f"handover verify peaked at {peak:.0f} MiB"
    into = tmp_path / "opened"
    done, peak = run_measured([*CORE, "open", bundle, "--identity", age_key, "--into", into])
    assert done.returncode == 0, done.stderr
    assert peak <= 150, f"handover open peaked at {peak:.0f} MiB"
    assert (into / "0001-data" / "data" / "disk.img").stat().st_size == 2 << 30


def test_seal_an_ssh_source_and_open_it(tools: None, sshd_shell: Any, tmp_path: Path) -> None:
    """`handover seal ssh://USER@HOST:PORT/PATH` streams the remote tar into a volume."""
    remote = Path(sshd_shell.data_root) / "bundle-src" / "www"
    (remote / "sub").mkdir(parents=True, exist_ok=True)
    (remote / "sub" / "page.html").write_text("<p>remote</p>")
    (remote / "été.txt").write_bytes(b"")
    known_hosts = sshd_shell.write_known_hosts(tmp_path / "known_hosts")
    key = tmp_path / "k"
    recipient = handover("keygen", "--out", key).stdout.strip()
    signing = tmp_path / "signing"
    assert handover("keygen", "--signing", "--out", signing).returncode == 0
    url = f"ssh://{sshd_shell.user}@127.0.0.1:{sshd_shell.port}{remote}"
    bundle = tmp_path / "bundle"
    done = handover("seal", url, "--to", recipient, "--sign-key", signing, "--out", bundle,
                    "--known-hosts", known_hosts, "--ssh-key", sshd_shell.key_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    volumes = sorted(p.name for p in (bundle / "volumes").iterdir())
    assert volumes == ["0001-127.0.0.1-www.tar.age"]
    into = tmp_path / "opened"
    done = handover("open", bundle, "--identity", key, "--into", into)
    assert done.returncode == 0, done.stderr
    pages = list(into.rglob("page.html"))
    assert [p.read_text() for p in pages] == ["<p>remote</p>"]
    assert list(into.rglob("été.txt"))


def link_tree(root: Path) -> tuple[dict[str, tuple[str, str]], list[list[str]]]:
    """Each entry under `root` without following links (kind, target or hash), hard link groups."""
    entries: dict[str, tuple[str, str]] = {}
    inodes: dict[int, list[str]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            entries[rel] = ("symlink", os.readlink(path))
        elif path.is_file():
            entries[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
            inodes.setdefault(path.stat().st_ino, []).append(rel)
        else:
            entries[rel] = ("dir", "")
    return entries, sorted(group for group in inodes.values() if len(group) > 1)


class TarFileSource:
    """A volume source over a tar file made by GNU tar *without* --hard-dereference.

    `handover seal` stores hard links as files; other producers (BusyBox tar)
    keep them as hard link members, which open must restore as tar does.
    """

    def __init__(self, label: str, tar_file: Path) -> None:
        self.label = label
        self.origin = f"local:{tar_file}"
        self.tar_file = tar_file

    @contextlib.contextmanager
    def open_tar(self) -> Iterator[BinaryIO]:
        with open(self.tar_file, "rb") as handle:
            yield handle

    def member_extras(self) -> dict[str, dict[str, str]]:
        return {}


def open_and_untar(bundle: Path, key: Path, volume: str, work: Path) -> tuple[str, Path, Path]:
    """`handover open` the bundle, and `age -d` + `tar -x` the volume; stderr and both trees."""
    into = work / "opened"
    done = handover("open", bundle, "--identity", key, "--into", into)
    assert done.returncode == 0, done.stderr
    plain = work / "volume.tar"  # the test's own plaintext copy, as a client would make
    encrypted = bundle / "volumes" / f"{volume}.tar.age"
    subprocess.run(["age", "-d", "-i", str(key), "-o", str(plain), str(encrypted)], check=True)
    by_tar = work / "by-tar"
    by_tar.mkdir()
    subprocess.run(["tar", "-xf", str(plain), "-C", str(by_tar)], check=True)
    return done.stderr, into / volume, by_tar


def test_open_restores_links_as_tar_does(tools: None, tmp_path: Path) -> None:
    """Sealed from GNU tar, opened by handover and by `age -d | tar -x`: the same links."""
    from handover.bundle.age import X25519Identity
    from handover.bundle.sshsig import SigningKey
    from handover.bundle.writer import BundleWriter

    site = tmp_path / "source" / "site"
    (site / "releases" / "v2").mkdir(parents=True)
    (site / "releases" / "v2" / "index.html").write_text("<h1>v2</h1>")
    (site / "current").symlink_to("releases/v2")  # a link to a folder, inside
    (site / "passwd").symlink_to("/etc/passwd")  # absolute: restored, said, never followed
    (site / "up").symlink_to("../../../outside")  # climbing
    (site / "dangling").symlink_to("releases/v3")
    os.link(site / "releases" / "v2" / "index.html", site / "index-hard.html")
    age_key, recipient, _, _ = client_keys(tmp_path / "client")
    signing = tmp_path / "signing"
    assert handover("keygen", "--signing", "--out", signing).returncode == 0
    bundle = tmp_path / "bundle"
    done = handover("seal", site, "--to", recipient, "--sign-key", signing, "--out", bundle)
    assert done.returncode == 0, done.stderr
    done = handover("verify", bundle, "--identity", age_key)
    assert done.returncode == 0, done.stdout + done.stderr
    (tmp_path / "seal").mkdir()
    said, opened_root, tar_root = open_and_untar(bundle, age_key, "0001-site", tmp_path / "seal")
    assert "2 symbolic link(s) point outside" in said, said
    assert "'0001-site/site/passwd', '0001-site/site/up'" in said
    opened, opened_groups = link_tree(opened_root)
    assert (opened, opened_groups) == link_tree(tar_root)
    assert opened["site/current"] == ("symlink", "releases/v2")
    assert opened["site/up"] == ("symlink", "../../../outside")
    assert opened["site/index-hard.html"][0] == "file"  # seal stores hard links as files

    # a producer that keeps hard links: the writer over GNU tar without --hard-dereference
    stream = tmp_path / "site.tar"
    tar = ["tar", "-cf", str(stream), "--format=posix", "--sort=name", "-C", str(site.parent)]
    subprocess.run([*tar, "site"], check=True)
    identity = X25519Identity.generate()
    key = tmp_path / "x25519.txt"
    key.write_text(f"{identity}\n")
    kept = tmp_path / "kept"
    writer = BundleWriter(kept, [identity.recipient()], SigningKey.generate())
    record = writer.add_volume(TarFileSource("site", stream))
    writer.finish()
    assert "hardlink" in {member.type for member in record.members}
    (tmp_path / "kept-open").mkdir()
    said, opened_root, tar_root = open_and_untar(kept, key, "0001-site", tmp_path / "kept-open")
    opened, opened_groups = link_tree(opened_root)
    assert (opened, opened_groups) == link_tree(tar_root)
    assert opened_groups == [["site/index-hard.html", "site/releases/v2/index.html"]]
    assert opened["site/passwd"] == ("symlink", "/etc/passwd")
    assert not (tmp_path / "outside").exists()
