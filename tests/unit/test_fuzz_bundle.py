"""Fuzzing bundles (#12): mutated files and hostile members, signed or not.

Every file of a real bundle (SHA256SUMS, its signature, provider.pub,
README.txt, the index, the volumes) is truncated, bit-flipped, spliced or
emptied; and bundles are re-signed around hostile volume members (`../x`,
`/abs`, `a/../../b`, very long names, markup, clashes, symbolic links with
inside, absolute and climbing targets and members under them, hard links to
earlier files, to later ones, to folders and outside) and mutated
plaintext. For every input:

- `verify_bundle` returns problems (no exception) and `open_bundle` raises
  only a BundleError (documented in handover/errors.py), within seconds;
- they agree: verify finds no problem exactly when open succeeds;
- nothing appears beside the destination of open (its parent is unchanged,
  apart from the destination itself when open succeeded);
- through the CLI, exit codes are 0 or 1 and no traceback is printed.

Deterministic (derandomize) with fixed, small budgets.
"""

from __future__ import annotations

import atexit
import shutil
import signal
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handover.bundle.age import X25519Identity
from handover.bundle.extract import open_bundle
from handover.bundle.reader import verify_bundle
from handover.bundle.sshsig import SigningKey
from handover.errors import BundleCorrupt, BundleError, NoMatchingIdentity
from tests.unit.test_bundle_hostile import (
    Entry,
    hostile_tar,
    invoke,
    make_bundle,
    member,
    tree,
)

KEYS = (X25519Identity.generate(), SigningKey.generate())
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
BASE_ENTRIES = [
    member("www", kind=tarfile.DIRTYPE),
    member("www/index.html", b"<h1>acme</h1>\n"),
    member("www/empty"),
    member("www/big.bin", bytes(range(256)) * 400),
]


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Fail the example (TimeoutError) instead of hanging the suite."""

    def expired(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fuzz-bundle-") as name:
        yield Path(name)


_BASE_DIR = Path(tempfile.mkdtemp(prefix="fuzz-bundle-base-"))
atexit.register(shutil.rmtree, _BASE_DIR, True)
ESCAPE = _BASE_DIR / "escape"  # absolute link target of hostile members: must stay empty
ESCAPE.mkdir()
BASE = make_bundle(
    _BASE_DIR / "bundle",
    KEYS,
    {
        "volumes/0001-web01-www.tar.age": hostile_tar(BASE_ENTRIES),
        "volumes/0002-db01-db.tar.age": hostile_tar([member("db/acme.dump", b"\x00" * 7000)]),
    },
    documents={"audit/audit.log": b'{"event": "sealed"}\n'},
)
BASE_FILES = sorted(p.relative_to(BASE).as_posix() for p in BASE.rglob("*") if p.is_file())


def check(bundle: Path, work: Path) -> str:
    """Run verify and open on `bundle`; check the invariants; return 'ok' or the error class."""
    into = work / "out" / "into"
    into.parent.mkdir()
    (into.parent / "keep.txt").write_text("the client's own file")
    before = tree(into.parent)
    with within(20):
        problems = verify_bundle(bundle, [KEYS[0]])
        assert all(line and "\n" not in line for line in problems), problems
        try:
            open_bundle(bundle, [KEYS[0]], into)
        except BundleError as exc:
            assert isinstance(exc, BundleCorrupt | NoMatchingIdentity), repr(exc)
            assert problems, f"open refused what verify passed: {exc}"
            assert tree(into.parent) == before
            return type(exc).__name__
    assert problems == [], f"open accepted what verify refused: {problems}"
    after = {
        k: v for k, v in tree(into.parent).items() if k != "into" and not k.startswith("into/")
    }
    assert after == before
    return "ok"


def mutate(data: bytes, how: str, position: int, value: bytes) -> bytes:
    position %= len(data) + 1
    if how == "flip" and data:
        position = min(position, len(data) - 1)
        flipped = data[position] ^ ((value[0] if value else 0) or 1)
        return data[:position] + bytes([flipped]) + data[position + 1 :]
    if how == "truncate":
        return data[:position]
    if how == "insert":
        return data[:position] + value + data[position:]
    if how == "empty":
        return b""
    return data + value  # append


@SETTINGS
@given(
    relpath=st.sampled_from(BASE_FILES),
    how=st.sampled_from(["flip", "truncate", "insert", "empty", "append"]),
    position=st.integers(min_value=0, max_value=1 << 17),
    value=st.binary(min_size=1, max_size=64),
)
def test_any_damaged_file_is_caught_by_both(
    relpath: str, how: str, position: int, value: bytes
) -> None:
    with workdir() as work:
        bundle = work / "bundle"
        shutil.copytree(BASE, bundle)
        target = bundle / relpath
        original = target.read_bytes()
        target.write_bytes(mutate(original, how, position, value))
        result = check(bundle, work)
        changed = target.read_bytes() != original
        assert (result == "ok") == (not changed)


HOSTILE_NAMES = st.sampled_from(
    [
        "../x",
        "/abs",
        "/etc/cron.d/evil",
        "a/../../b",
        "./www/index.html",
        "www/index.html/inside",
        "www",
        "SHA256SUMS",
        "./SHA256SUMS",
        "x" * 300,
        "/".join(["y" * 200] * 25),
        "[red]markup[/red]",
        "[/]",
        "a\nb",
        "\x1b[31mred",
        "",
        ".",
        "./",
        "con/..",
        "lnk",
        "lnk/x",
        "./lnk/sub/x",
        "www/lnk",
        "www/lnk/x",
    ]
)
KINDS = st.sampled_from(
    [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE]
)
PATHISH = st.text(alphabet="ab./[]\\", min_size=1, max_size=12)


@SETTINGS
@given(
    names=st.lists(st.one_of(HOSTILE_NAMES, PATHISH), min_size=1, max_size=4),
    kinds=st.lists(KINDS, min_size=4, max_size=4),
    link=st.sampled_from(
        [
            "/etc/passwd",
            "../../x",
            "../../..",
            "www/index.html",
            "./www/index.html",
            "www",
            "lnk",
            "",
            str(ESCAPE),
        ]
    ),
)
def test_signed_hostile_members_never_escape(
    names: list[str], kinds: list[bytes], link: str
) -> None:
    entries: list[Entry] = list(BASE_ENTRIES)
    for name, kind in zip(names, kinds, strict=False):
        entries.append(member(name, b"evil" if kind == tarfile.REGTYPE else b"", kind, link))
    with workdir() as work:
        try:
            volume = hostile_tar(entries)
        except (ValueError, tarfile.TarError):  # a name tarfile itself cannot write
            return
        bundle = make_bundle(work / "bundle", KEYS, {"volumes/0001-v.tar.age": volume})
        check(bundle, work)
        assert not (work / "x").exists() and not (work / "b").exists()
        assert not (work / "lnk").exists() and not (work / "sub").exists()
        assert list(ESCAPE.iterdir()) == []  # what links pointing outside point to


LINK_TREE_NAMES = st.sampled_from(["a", "d/a", "lnk", "lnk/x", "d/lnk", "d/lnk/x", "./d/b"])
LINK_TREE_TARGETS = st.sampled_from(
    ["a", "d/a", "../a", "../../..", "lnk/..", ".", "/etc", str(ESCAPE), "lnk", "d"]
)
LINK_TREE_KINDS = st.sampled_from([tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE])


@settings(SETTINGS, max_examples=20)
@given(
    entries=st.lists(
        st.tuples(LINK_TREE_NAMES, LINK_TREE_KINDS, LINK_TREE_TARGETS),
        min_size=1,
        max_size=5,
        unique_by=lambda entry: entry[0],
    )
)
def test_signed_link_trees_open_as_tar_would_or_not_at_all(
    entries: list[tuple[str, bytes, str]],
) -> None:
    """Mostly valid trees of files, symbolic and hard links: what opens is what was sealed."""
    members = [
        member(name, name.encode() if kind == tarfile.REGTYPE else b"", kind, target)
        for name, kind, target in entries
    ]
    with workdir() as work:
        bundle = make_bundle(
            work / "bundle", KEYS, {"volumes/0001-v.tar.age": hostile_tar(members)}
        )
        if check(bundle, work) == "ok":
            opened = tree(work / "out" / "into" / "0001-v")
            for info, _ in members:
                path = "/".join(p for p in info.name.split("/") if p not in ("", "."))
                if info.type == tarfile.SYMTYPE:
                    assert opened[path] == ("link", info.linkname.encode())
                else:
                    assert opened[path][0] == "file"
        assert list(ESCAPE.iterdir()) == [] and not (work / "x").exists()


@SETTINGS
@given(
    how=st.sampled_from(["flip", "truncate", "insert", "append"]),
    position=st.integers(min_value=0, max_value=110_000),
    value=st.binary(min_size=1, max_size=600),
    index=st.booleans(),
)
def test_signed_mutated_plaintext_is_caught_by_both(
    how: str, position: int, value: bytes, index: bool
) -> None:
    """The attacker holds the signing key: tar and index bytes mutated, then re-sealed."""
    tar, members = hostile_tar(BASE_ENTRIES)
    with workdir() as work:
        if index:
            bundle = make_bundle(
                work / "bundle",
                KEYS,
                {"volumes/0001-v.tar.age": (tar, members)},
                index_edit=lambda data: mutate(data, how, position, value),
            )
        else:
            volume = (mutate(tar, how, position, value), members)
            bundle = make_bundle(work / "bundle", KEYS, {"volumes/0001-v.tar.age": volume})
        check(bundle, work)


def test_the_base_bundle_is_good() -> None:
    """The fuzzers start from a bundle that verifies and opens."""
    with workdir() as work:
        assert check(BASE, work) == "ok"


@settings(max_examples=6, deadline=None, derandomize=True)
@given(
    relpath=st.sampled_from(BASE_FILES),
    position=st.integers(min_value=0, max_value=1 << 16),
    signer=st.booleans(),
)
def test_cli_exit_codes_and_no_traceback(relpath: str, position: int, signer: bool) -> None:
    with workdir() as work:
        bundle = work / "bundle"
        shutil.copytree(BASE, bundle)
        target = bundle / relpath
        target.write_bytes(mutate(target.read_bytes(), "flip", position, b"\x01"))
        identity = work / "id.txt"
        identity.write_text(f"{KEYS[0]}\n")
        pub = work / "provider.pub"
        pub.write_text(KEYS[1].public_line("p") + "\n")
        extra = ["--signer", str(pub)] if signer else []
        for args in (
            ["verify", bundle, "-i", identity, *extra],
            ["open", bundle, "-i", identity, "--into", work / "o", *extra],
        ):
            code, out = invoke(*args)
            assert code == 1, out
            assert "Traceback" not in out and "error:" in out
        code, out = invoke("verify", work / "nowhere")
        assert code == 2 and "Traceback" not in out
