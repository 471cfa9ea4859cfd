"""Hostile bundles (#12): signed or not, whatever they name, verify and open agree and stay put.

The builder here writes bundles by hand (not with BundleWriter), so a test
can sign a manifest, a volume or an index no honest writer would produce:
the point is that a valid signature does not make a bundle safe to open.
`make_bundle` and `hostile_tar` are shared with test_fuzz_bundle.py.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from handover.bundle.age import AgeWriter, X25519Identity
from handover.bundle.extract import MAX_RESOLVE_STEPS, LinkMap, open_bundle, staging_prefix
from handover.bundle.manifest import MANIFEST_NAME, Manifest, VolumeRecord
from handover.bundle.pump import seal_trailer
from handover.bundle.reader import verify_bundle, verify_bundle_outcome
from handover.bundle.readme import NAMESPACE, render_readme
from handover.bundle.sshsig import SigningKey, sign
from handover.bundle.sums import SUMS_NAME, render_sums
from handover.bundle.tarparse import TarParser
from handover.bundle.types import MemberRecord
from handover.bundle.writer import INDEX_NAME, PROVIDER_KEY_NAME, SIGNATURE_NAME
from handover.cli import _register, app
from handover.errors import BundleCorrupt, BundleError

Keys = tuple[X25519Identity, SigningKey]
Entry = tuple[tarfile.TarInfo, bytes]

_register()
runner = CliRunner()


@pytest.fixture(scope="module")
def keys() -> Keys:
    return X25519Identity.generate(), SigningKey.generate()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encrypt(data: bytes, identity: X25519Identity) -> bytes:
    out = io.BytesIO()
    with AgeWriter(out, [identity.recipient()]) as age:  # type: ignore[arg-type]
        age.write(data)
    return out.getvalue()


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> Entry:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = 1_700_000_000
    return info, data


def plain_tar(entries: list[Entry]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.size else None)
    return out.getvalue()


def hostile_tar(entries: list[Entry]) -> tuple[bytes, list[MemberRecord]]:
    """A volume's plaintext as the sealer would finish it (its SHA256SUMS member appended),
    and the members the manifest records: what a signed bundle of these entries holds."""
    raw = plain_tar(entries)
    parser = TarParser("build")
    try:
        parser.feed(memoryview(raw))
        parser.close()
    except BundleError:  # names even the sealer refuses ('..'): sign them as they are
        return raw, []
    return raw[: parser.archive_size] + b"".join(seal_trailer(parser)), parser.members()


def make_bundle(
    path: Path,
    keys: Keys,
    volumes: dict[str, tuple[bytes, list[MemberRecord]]],
    *,
    documents: dict[str, bytes] | None = None,
    index_tar: bytes | None = None,
    index_edit: Callable[[bytes], bytes] | None = None,
) -> Path:
    """A complete bundle, signed by keys[1], whatever the names and contents given."""
    identity, key = keys
    files: dict[str, bytes] = {}
    records = []
    for number, (file, (tar, members)) in enumerate(volumes.items(), 1):
        encrypted = encrypt(tar, identity)
        files[file] = encrypted
        records.append(
            VolumeRecord.model_construct(
                number=number,
                file=file,
                label="v",
                origin="test",
                size=len(encrypted),
                sha256=sha(encrypted),
                tar_size=len(tar),
                members=members,
            )
        )
    manifest = Manifest.model_construct(
        format="handover-bundle/1",
        created="2026-01-01T00:00:00+00:00",
        provider_key=key.public_line("provider"),
        volumes=records,
        documents=[],
        extra={},
    )
    docs = {MANIFEST_NAME: manifest.to_json(), **(documents or {})}
    if index_tar is None:
        inner = render_sums({name: sha(data) for name, data in docs.items()})
        index_tar = plain_tar([member(n, d) for n, d in [*docs.items(), (SUMS_NAME, inner)]])
    if index_edit is not None:
        index_tar = index_edit(index_tar)
    files[INDEX_NAME] = encrypt(index_tar, identity)
    readme = render_readme(
        ["volumes/0001-v.tar.age"], "2026-01-01T00:00:00+00:00", key.fingerprint()
    )
    files["README.txt"] = readme.encode()
    files[PROVIDER_KEY_NAME] = (key.public_line("provider") + "\n").encode()
    sums = render_sums({name: sha(data) for name, data in files.items()})
    for name, data in files.items():
        target = path / name.lstrip("/")  # an absolute name is listed as is, written inside
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (path / SUMS_NAME).write_bytes(sums)
    (path / SIGNATURE_NAME).write_text(sign(sums, key, NAMESPACE))
    return path


def tree(path: Path) -> dict[str, tuple[str, bytes | None]]:
    """Every entry under `path` (links not followed): kind and file content."""
    found: dict[str, tuple[str, bytes | None]] = {}
    for entry in sorted(path.rglob("*")):
        rel = entry.relative_to(path).as_posix()
        if entry.is_symlink():
            found[rel] = ("link", os.readlink(entry).encode())
        elif entry.is_file():
            found[rel] = ("file", entry.read_bytes())
        else:
            found[rel] = ("dir", None)
    return found


def invoke(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def one_volume(path: Path, keys: Keys, entries: list[Entry]) -> Path:
    return make_bundle(path, keys, {"volumes/0001-v.tar.age": hostile_tar(entries)})


def same_refusal(bundle: Path, keys: Keys, into: Path) -> str:
    """verify and open give the same single problem; the parent of `into` is untouched."""
    before = tree(into.parent)
    problems = verify_bundle(bundle, [keys[0]])
    assert len(problems) == 1, problems
    with pytest.raises(BundleCorrupt) as caught:
        open_bundle(bundle, [keys[0]], into)
    assert str(caught.value) == problems[0]
    assert tree(into.parent) == before
    return problems[0]


# -- the manifest and the sums cannot steer open --------------------------------------------


@pytest.mark.parametrize(
    "volume_file",
    ["volumes/...tar.age", "volumes/../x.tar.age", "/tmp/x.tar.age", "volumes/index.tar.age"],
)
def test_signed_manifest_cannot_name_a_volume_outside_the_destination(
    tmp_path: Path, keys: Keys, volume_file: str
) -> None:
    bundle = make_bundle(
        tmp_path / "b" / "bundle",
        keys,
        {volume_file: hostile_tar([member("escaped.txt", b"pwned")])},
    )
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("mine")
    before = tree(tmp_path)
    problems = verify_bundle(bundle, [keys[0]])
    assert any("is not named volumes/NNNN-<label>.tar.age: refused" in p for p in problems)
    with pytest.raises(BundleCorrupt, match="refused"):  # by the outer checks, or the manifest's
        open_bundle(bundle, [keys[0]], work / "into")
    assert tree(tmp_path) == before


def test_cli_open_of_a_signed_escaping_bundle_exits_1_and_writes_nothing(
    tmp_path: Path, keys: Keys
) -> None:
    bundle = make_bundle(
        tmp_path / "bundle", keys, {"volumes/...tar.age": hostile_tar([member("x", b"1")])}
    )
    identity = tmp_path / "id.txt"
    identity.write_text(f"{keys[0]}\n")
    work = tmp_path / "work"
    work.mkdir()
    code, out = invoke("open", bundle, "--identity", identity, "--into", work / "into")
    assert code == 1, out
    assert "Traceback" not in out and "refused" in out
    assert list(work.iterdir()) == []


def test_sums_listing_odd_paths_is_reported_not_followed(tmp_path: Path, keys: Keys) -> None:
    bundle = one_volume(tmp_path / "b", keys, [member("a", b"a")])
    sums = (bundle / SUMS_NAME).read_bytes() + f"{'0' * 64}  ../outside\n".encode()
    (bundle / SUMS_NAME).write_bytes(sums)
    (bundle / SIGNATURE_NAME).write_text(sign(sums, keys[1], NAMESPACE))
    problems = verify_bundle(bundle, [keys[0]])
    assert problems == ["SHA256SUMS: lists '../outside', not a plain relative path: refused"]


# -- one member policy for verify and open --------------------------------------------------


DIR = tarfile.DIRTYPE


def sym(name: str, target: str) -> Entry:
    return member(name, kind=tarfile.SYMTYPE, link=target)


def hard(name: str, target: str) -> Entry:
    return member(name, kind=tarfile.LNKTYPE, link=target)


HOSTILE_MEMBERS: list[tuple[str, list[Entry], str]] = [
    ("dotdot", [member("../x", b"evil")], "points outside"),
    ("absolute", [member("/abs", b"evil")], "has an absolute path"),
    ("climbing", [member("a/../../b", b"evil")], "points outside"),
    ("dot-slash twin", [member("a", b"1"), member("./a", b"2")], "appears twice"),
    ("file then dir", [member("a", b"1"), member("a/b", b"2")], "lies under 'a'"),
    ("dir then file", [member("a/b", b"1"), member("a", b"2")], "appears twice"),
    ("long component", [member("d/" + "x" * 300, b"1")], "longer than 255 bytes"),
    ("long path", [member("/".join(["y" * 200] * 25), b"1")], "longer than 4000 bytes"),
    ("under a symlink", [sym("lnk", "/tmp"), member("lnk/x", b"evil")], "which is a symbolic"),
    ("under ./symlink", [sym("lnk", "/tmp"), member("./lnk//x", b"evil")], "which is a symbolic"),
    ("dir under symlink", [sym("lnk", ".."), member("lnk/d", kind=DIR)], "which is a symbolic"),
    ("symlink over a dir", [member("d/x", b"1"), sym("d", "/tmp")], "appears twice"),
    ("symlink twice", [sym("l", "a"), sym("./l", "b")], "appears twice"),
    ("symlink empty target", [sym("l", "")], "empty target"),
    ("hard link ahead", [hard("h", "later"), member("later", b"1")], "hard link to 'later'"),
    ("hard link absolute", [hard("h", "/etc/passwd")], "hard link to '/etc/passwd'"),
    ("hard link climbing", [hard("h", "../ok.txt")], "hard link to '../ok.txt'"),
    ("hard link to a symlink", [sym("s", "ok.txt"), hard("h", "s")], "not a regular file"),
    ("hard link to a folder", [member("d", kind=DIR), hard("h", "d")], "not a regular file"),
    ("hard link to itself", [hard("h", "h")], "not a regular file"),
    ("block device", [member("blk", kind=tarfile.BLKTYPE)], "block device"),
    ("device", [member("dev", kind=tarfile.CHRTYPE)], "character device"),
    ("fifo", [member("p", kind=tarfile.FIFOTYPE)], "FIFO"),
]


@pytest.mark.parametrize(
    ("entries", "message"),
    [(e, m) for _, e, m in HOSTILE_MEMBERS],
    ids=[name for name, _, _ in HOSTILE_MEMBERS],
)
def test_verify_reports_exactly_what_open_refuses(
    tmp_path: Path, keys: Keys, entries: list[Entry], message: str
) -> None:
    bundle = one_volume(tmp_path / "b", keys, [member("ok.txt", b"ok"), *entries])
    assert verify_bundle(bundle) == []  # signed and listed: only the contents are hostile
    problem = same_refusal(bundle, keys, tmp_path / "w" / "into")
    assert problem.startswith("volumes/0001-v.tar.age: member ") and message in problem


def test_data_after_the_end_of_archive_is_refused_by_both(tmp_path: Path, keys: Keys) -> None:
    tar, members = hostile_tar([member("a", b"a")])
    bundle = make_bundle(tmp_path / "b", keys, {"volumes/0001-v.tar.age": (tar + b"junk", members)})
    problem = same_refusal(bundle, keys, tmp_path / "w" / "into")
    assert "data after the tar end-of-archive marker" in problem


def test_odd_but_harmless_names_open(tmp_path: Path, keys: Keys) -> None:
    names = ["[red]x[/red]", "[/]", "a b\nc", "été/ü", "./dot/f"]
    bundle = one_volume(tmp_path / "b", keys, [member(n, n.encode()) for n in names])
    assert verify_bundle(bundle, [keys[0]]) == []
    open_bundle(bundle, [keys[0]], tmp_path / "into")
    root = tmp_path / "into" / "0001-v"
    assert (root / "[red]x[/red]").read_bytes() == b"[red]x[/red]"
    assert (root / "a b\nc").read_bytes() == b"a b\nc"
    assert (root / "dot" / "f").read_bytes() == b"./dot/f"
    assert (root / SUMS_NAME).is_file()


def test_markup_in_a_refused_name_is_printed_literally(tmp_path: Path, keys: Keys) -> None:
    bundle = one_volume(tmp_path / "b", keys, [hard("[bold red]l[/]", "x")])
    identity = tmp_path / "id.txt"
    identity.write_text(f"{keys[0]}\n")
    for args in (("verify", bundle), ("open", bundle, "--into", tmp_path / "into")):
        code, out = invoke(*args, "--identity", identity)
        assert code == 1, out
        assert "member '[bold red]l[/]' is a hard link to 'x'" in out, out


# -- links are client data: restored as links, never followed -------------------------------


def test_links_open_as_links_never_followed_and_verify_agrees(tmp_path: Path, keys: Keys) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    entries = [
        sym("zfirst", str(outside)),  # a link read before the files: still created last
        member("www", kind=DIR),
        member("www/index.html", b"<h1>acme</h1>"),
        sym("www/current", "index.html"),
        sym("etc", "/etc"),
        sym("up", "../../x"),
        sym("www/top", "../.."),
        sym("hop", "."),
        sym("via", "hop/.."),  # inside on paper, outside once 'hop' is followed
        sym("dangling", "www/nothing"),
        sym("www/abs", "/var/www"),
        hard("www/hard", "www/index.html"),
        hard("www/hard2", "./www/index.html"),
    ]
    bundle = one_volume(tmp_path / "b", keys, [member("ok.txt", b"ok"), *entries])
    assert verify_bundle(bundle, [keys[0]]) == []
    notes: list[str] = []
    open_bundle(bundle, [keys[0]], tmp_path / "into", notes=notes)
    root = tmp_path / "into" / "0001-v"
    found = tree(root)
    for info, _ in entries:
        if info.type == tarfile.SYMTYPE:
            assert found[info.name] == ("link", info.linkname.encode()), info.name
    assert found["www/hard"] == found["www/hard2"] == ("file", b"<h1>acme</h1>")
    index = (root / "www" / "index.html").stat()
    assert (root / "www" / "hard").stat().st_ino == index.st_ino
    assert index.st_nlink == 3
    assert list(outside.iterdir()) == []
    leaving = [n for n in notes if "symbolic link(s) point outside" in n]
    assert leaving == [
        "6 symbolic link(s) point outside the folder they were restored in (absolute or "
        "climbing target): restored as links, never followed: '0001-v/zfirst', '0001-v/etc', "
        "'0001-v/up', '0001-v/www/top', '0001-v/via' and 1 more"
    ]


def test_cli_open_restores_links_and_says_which_leave(tmp_path: Path, keys: Keys) -> None:
    bundle = one_volume(tmp_path / "b", keys, [member("a", b"a"), sym("l", "/etc/passwd")])
    identity = tmp_path / "id.txt"
    identity.write_text(f"{keys[0]}\n")
    code, out = invoke("verify", bundle, "-i", identity)
    assert code == 0, out
    code, out = invoke("open", bundle, "-i", identity, "--into", tmp_path / "o")
    assert code == 0, out
    assert "1 symbolic link(s) point outside" in out and "'0001-v/l'" in out
    assert os.readlink(tmp_path / "o" / "0001-v" / "l") == "/etc/passwd"


def test_a_member_under_a_link_is_never_written_through_it(tmp_path: Path, keys: Keys) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    for number, name in enumerate(["lnk/x", "lnk/sub/x", "./lnk/x"]):
        bundle = one_volume(
            tmp_path / f"b{number}", keys, [sym("lnk", str(outside)), member(name, b"evil")]
        )
        problem = same_refusal(bundle, keys, tmp_path / f"w{number}" / "into")
        assert "lies under 'lnk', which is a symbolic link in the same archive" in problem
        assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    ("path", "target", "leaves"),
    [
        ("a", "/etc", True),
        ("a", "b", False),
        ("d/a", "../b", False),
        ("d/a", "../../b", True),
        ("a", "./././b/../c", False),
        ("a", "x/../..", True),
        ("via", "hop/..", True),  # hop -> .
        ("via", "deep/..", False),  # deep -> d/e
        ("via", "abs/x", True),  # abs -> /tmp
        ("via", "loop", True),  # loop -> loop: cannot tell, said
        ("d/x", "in/../b", False),  # d/in -> ../a: d/in/.. is the root
        ("d/x", "in/../../b", True),  # so this climbs, though d/in/../.. would not on paper
    ],
)
def test_link_may_leave_resolves_through_the_volume_links(
    path: str, target: str, leaves: bool
) -> None:
    links = {"hop": ".", "deep": "d/e", "abs": "/tmp", "loop": "loop", "d/in": "../a"}
    assert LinkMap(links).may_leave(path, target) is leaves


def test_link_resolution_is_bounded_on_hostile_chains() -> None:
    """Many deep links through each other: a bounded number of steps each, then 'may leave'."""
    long = "/".join(["x"] * 1000)
    links = {f"l{i}": f"l{i + 1}/{long}" for i in range(5000)}
    resolver = LinkMap(links)
    started = time.monotonic()
    assert all(resolver.may_leave(path, target) for path, target in links.items())
    assert time.monotonic() - started < 5
    deep = "/".join(["d"] * MAX_RESOLVE_STEPS)
    assert LinkMap({}).may_leave(f"{deep}/l", "x")  # too deep to tell: said


# -- the bundle folder itself ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "linked-folder"])
def test_irregular_bundle_files_are_refused_without_hanging(
    tmp_path: Path, keys: Keys, kind: str
) -> None:
    bundle = one_volume(tmp_path / "b", keys, [member("a", b"a")])
    volume = bundle / "volumes" / "0001-v.tar.age"
    if kind == "dev-zero":
        volume.unlink()
        volume.symlink_to("/dev/zero")
    elif kind == "fifo":
        volume.unlink()
        os.mkfifo(volume)
    else:
        (bundle / "volumes").rename(tmp_path / "elsewhere")
        (bundle / "volumes").symlink_to(tmp_path / "elsewhere")
    started = time.monotonic()
    assert verify_bundle(bundle), "the outer checks alone find it"
    problems = verify_bundle(bundle, [keys[0]])
    assert problems and all("not a regular file" in p or "missing" in p for p in problems)
    assert any(p.startswith("volumes") for p in problems), problems
    with pytest.raises(BundleError):
        open_bundle(bundle, [keys[0]], tmp_path / "into")
    assert time.monotonic() - started < 10
    assert not (tmp_path / "into").exists()


# -- bounded memory -------------------------------------------------------------------------


def test_the_index_is_streamed_not_held(tmp_path: Path, keys: Keys) -> None:
    big = os.urandom(1 << 20) * 48  # a 48 MiB document in the index
    bundle = make_bundle(
        tmp_path / "b",
        keys,
        {"volumes/0001-v.tar.age": hostile_tar([member("a", b"a")])},
        documents={"big.bin": big},
    )
    tracemalloc.start()
    try:
        assert verify_bundle(bundle, [keys[0]]) == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20, peak
    open_bundle(bundle, [keys[0]], tmp_path / "into")
    assert (tmp_path / "into" / "index" / "big.bin").stat().st_size == len(big)


def test_an_oversized_manifest_value_is_refused(
    tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MANIFEST.json streams through a parser that holds one value (a member) at a time."""
    monkeypatch.setattr("handover.bundle.manifest_stream.MAX_VALUE_CHARS", 1024)
    bundle = one_volume(tmp_path / "b", keys, [member("f" * 2000, b"x")])
    problems = verify_bundle(bundle, [keys[0]])
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{INDEX_NAME}: {MANIFEST_NAME}: a value longer than 1024 ")
    assert problems[0].endswith("refused (a reader holds one value at a time)")


# -- an interrupted open --------------------------------------------------------------------


def test_staging_left_by_a_killed_open_is_removed_and_said(tmp_path: Path, keys: Keys) -> None:
    bundle = one_volume(tmp_path / "b", keys, [member("a", b"a")])
    into = tmp_path / "w" / "into"
    into.parent.mkdir()
    dead = into.parent / f"{staging_prefix(into)}999999999-abc"
    (dead / "0001-v").mkdir(parents=True)
    (dead / "0001-v" / "secret.txt").write_text("decrypted client data")
    running = into.parent / f"{staging_prefix(into)}{os.getppid()}-def"
    running.mkdir()
    notes: list[str] = []
    open_bundle(bundle, [keys[0]], into, notes=notes)
    assert not dead.exists() and running.exists()
    assert f"{dead}: removed the decrypted data an interrupted open left" in notes
    assert any(n.startswith(f"{running}: staging folder of a running open") for n in notes)
    assert sorted(p.name for p in into.parent.iterdir()) == sorted(["into", running.name])


# -- trust is explicit ----------------------------------------------------------------------


def test_without_signer_the_fingerprint_is_shown_and_marked_unchecked(
    tmp_path: Path, keys: Keys
) -> None:
    bundle = one_volume(tmp_path / "b", keys, [member("a", b"a")])
    outcome = verify_bundle_outcome(bundle)
    assert (outcome.signer_fingerprint, outcome.signer_checked) == (keys[1].fingerprint(), False)
    identity = tmp_path / "id.txt"
    identity.write_text(f"{keys[0]}\n")
    code, out = invoke("verify", bundle)
    assert code == 0, out
    assert f"signed by {keys[1].fingerprint()} (the bundle's own provider.pub): NOT checked" in out
    code, out = invoke("open", bundle, "--identity", identity, "--into", tmp_path / "o")
    assert code == 0, out
    assert f"signed by {keys[1].fingerprint()}" in out and "NOT checked" in out
    pub = tmp_path / "provider.pub"
    pub.write_text(keys[1].public_line("mine") + "\n")
    code, out = invoke("verify", bundle, "--signer", pub)
    assert code == 0, out
    assert f"signed by {keys[1].fingerprint()}: matches the key given with --signer" in out
    other = tmp_path / "other.pub"
    other.write_text(SigningKey.generate().public_line("x") + "\n")
    for args in (("verify", bundle), ("open", bundle, "-i", identity, "--into", tmp_path / "o2")):
        code, out = invoke(*args, "--signer", other)
        assert code == 1 and "does not verify" in out, out
    assert not (tmp_path / "o2").exists()


def test_readme_tells_the_client_to_compare_the_fingerprint_out_of_band(keys: Keys) -> None:
    text = render_readme(
        ["volumes/0001-v.tar.age"], "2026-01-01T00:00:00+00:00", keys[1].fingerprint()
    )
    assert "ssh-keygen -lf provider.pub" in text
    assert "by another channel" in text and keys[1].fingerprint() in text


def test_members_beyond_the_manifest_stop_the_read(tmp_path: Path, keys: Keys) -> None:
    """Rows are kept in memory: a volume cannot hold more members than its manifest lists."""
    tar, members = hostile_tar([member(f"f{i}", b"x") for i in range(50)])
    bundle = make_bundle(tmp_path / "b", keys, {"volumes/0001-v.tar.age": (tar, members[:3])})
    problem = same_refusal(bundle, keys, tmp_path / "w" / "into")
    assert problem == (
        "volumes/0001-v.tar.age: more than 4 members, more than MANIFEST.json lists: refused"
    )


def test_an_unwritable_destination_is_one_line_exit_2(tmp_path: Path, keys: Keys) -> None:
    bundle = one_volume(tmp_path / "b", keys, [member("a", b"a")])
    identity = tmp_path / "id.txt"
    identity.write_text(f"{keys[0]}\n")
    (tmp_path / "file").write_text("not a folder")
    code, out = invoke("open", bundle, "-i", identity, "--into", tmp_path / "file" / "into")
    assert code == 2, out
    assert out.count("error:") == 1 and "cannot create a folder there" in out


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("../evil.txt", "points outside"),
        ("/etc/evil", "has an absolute path"),
        (MANIFEST_NAME + "/x", "lies under 'MANIFEST.json'"),
    ],
)
def test_index_members_follow_the_same_policy(
    tmp_path: Path, keys: Keys, document: str, message: str
) -> None:
    bundle = make_bundle(
        tmp_path / "b",
        keys,
        {"volumes/0001-v.tar.age": hostile_tar([member("a", b"a")])},
        documents={document: b"evil"},
    )
    problem = same_refusal(bundle, keys, tmp_path / "w" / "into")
    assert problem.startswith(f"{INDEX_NAME}: member ") and message in problem
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "w" / "evil.txt").exists()
