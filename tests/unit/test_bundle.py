"""Bundle writer and reader: seal, verify, open, tamper and misuse (no external tools)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from handover.bundle.age import AgeReader, AgeWriter, X25519Identity
from handover.bundle.extract import open_bundle, open_bundle_outline
from handover.bundle.local import DirectoryTarget
from handover.bundle.manifest import VolumeRecord, load_manifest
from handover.bundle.reader import verify_bundle, verify_bundle_outcome
from handover.bundle.snapshot import snapshot_source
from handover.bundle.sshsig import SigningKey
from handover.bundle.sums import parse_sums
from handover.bundle.types import MemberRecord
from handover.bundle.writer import BundleWriter
from handover.errors import BundleCorrupt, BundleError, ConnectorError, UsageError


def tar_bytes(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return out.getvalue()


class MemorySource:
    """A VolumeSource over an in-memory tar stream; `fail` makes the producer fail at exit."""

    def __init__(
        self,
        label: str,
        files: dict[str, bytes],
        *,
        links: dict[str, str] | None = None,
        fail: bool = False,
    ) -> None:
        self._label = label
        self.data = tar_bytes(files, links)
        self.fail = fail

    @property
    def label(self) -> str:
        return self._label

    @property
    def origin(self) -> str:
        return f"memory:{self._label}"

    @contextlib.contextmanager
    def open_tar(self) -> Iterator[BinaryIO]:
        yield io.BytesIO(self.data)
        if self.fail:
            raise ConnectorError("producer exited with status 2", host="memory")

    def member_extras(self) -> dict[str, dict[str, str]]:
        return {"www/index.html": {"etag": "abc"}}


FILES_A = {
    "www/index.html": b"<h1>acme</h1>\n",
    "www/empty": b"",
    "www/données/été.txt": "unicode ✓".encode(),
    "www/big.bin": os.urandom(300_000),
}
FILES_B = {"db/acme.dump": os.urandom(70_000)}


@pytest.fixture(scope="module")
def keys() -> tuple[X25519Identity, SigningKey]:
    return X25519Identity.generate(), SigningKey.generate()


def seal(path: Path, keys: tuple[X25519Identity, SigningKey], **finish: object) -> Path:
    identity, key = keys
    writer = BundleWriter(path, [identity.recipient()], key)
    writer.add_volume(MemorySource("web01-www", FILES_A))
    writer.add_volume(MemorySource("db01-db", FILES_B))
    writer.finish(**finish)  # type: ignore[arg-type]
    return path


@pytest.fixture
def bundle(tmp_path: Path, keys: tuple[X25519Identity, SigningKey]) -> Path:
    return seal(tmp_path / "bundle", keys, documents={"notes/readme.md": b"# notes\n"})


def files_of(path: Path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())


def test_sealed_bundle_has_the_documented_layout(bundle: Path) -> None:
    assert files_of(bundle) == [
        "README.txt",
        "SHA256SUMS",
        "SHA256SUMS.sig",
        "index.tar.age",
        "provider.pub",
        "volumes/0001-web01-www.tar.age",
        "volumes/0002-db01-db.tar.age",
    ]
    sums = parse_sums((bundle / "SHA256SUMS").read_bytes(), "SHA256SUMS")
    assert sorted(sums) == [f for f in files_of(bundle) if not f.startswith("SHA256SUMS")]
    for name, digest in sums.items():
        assert hashlib.sha256((bundle / name).read_bytes()).hexdigest() == digest


def test_readme_names_no_client_file(bundle: Path) -> None:
    readme = (bundle / "README.txt").read_text()
    for name in [*FILES_A, *FILES_B]:
        assert name not in readme
        assert name.rsplit("/", 1)[-1] not in readme
    assert "sha256sum -c SHA256SUMS" in readme
    assert "volumes/0002-db01-db.tar.age" in readme


def test_verify_passes_without_and_with_identity(
    bundle: Path, keys: tuple[X25519Identity, SigningKey]
) -> None:
    identity, key = keys
    assert verify_bundle(bundle) == []
    assert verify_bundle(bundle, [identity]) == []
    assert verify_bundle(bundle, [identity], signer=key.public_line("x")) == []


def test_manifest_lists_members_sources_documents_and_extra_keys(
    tmp_path: Path, keys: tuple[X25519Identity, SigningKey]
) -> None:
    path = seal(
        tmp_path / "b",
        keys,
        documents={"audit.jsonl": b"{}\n"},
        extra_manifest={"checklist": {"bundle-sealed": "done"}},
    )
    with (
        open(path / "index.tar.age", "rb") as raw,
        AgeReader(raw, [keys[0]]) as age,  # type: ignore[arg-type]
        tarfile.open(fileobj=age, mode="r|") as tar,  # type: ignore[call-overload]
    ):
        contents = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
    assert sorted(contents) == ["MANIFEST.json", "SHA256SUMS", "audit.jsonl"]
    manifest = load_manifest(contents["MANIFEST.json"], "test")
    assert manifest.extra == {"checklist": {"bundle-sealed": "done"}}
    assert [d.path for d in manifest.documents] == ["audit.jsonl"]
    www = manifest.volumes[0]
    assert www.origin == "memory:web01-www"
    members = {m.path: m for m in www.members}
    assert members["www/big.bin"].sha256 == hashlib.sha256(FILES_A["www/big.bin"]).hexdigest()
    assert members["www/index.html"].extra == {"etag": "abc"}
    assert members["www/données/été.txt"].mode == 0o644
    outer = parse_sums((path / "SHA256SUMS").read_bytes(), "SHA256SUMS")
    assert outer[www.file] == www.sha256
    assert json.loads(contents["MANIFEST.json"])["format"] == "handover-bundle/1"


def test_open_extracts_every_volume_and_the_index(
    bundle: Path, keys: tuple[X25519Identity, SigningKey], tmp_path: Path
) -> None:
    into = tmp_path / "opened"
    open_bundle(bundle, [keys[0]], into)
    assert sorted(p.name for p in into.iterdir()) == ["0001-web01-www", "0002-db01-db", "index"]
    for name, data in FILES_A.items():
        assert (into / "0001-web01-www" / name).read_bytes() == data
    assert (into / "0002-db01-db" / "db/acme.dump").read_bytes() == FILES_B["db/acme.dump"]
    assert (into / "index" / "notes/readme.md").read_bytes() == b"# notes\n"
    assert (into / "0001-web01-www" / "SHA256SUMS").exists()
    assert not list(tmp_path.glob(".opened.opening-*"))


def test_open_writes_every_byte_when_the_system_takes_writes_in_pieces(
    bundle: Path,
    keys: tuple[X25519Identity, SigningKey],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Files are written straight to their descriptors: a short write is followed by the rest."""
    real_write = os.write
    shortened: list[int] = []

    def at_most_7_bytes(fd: int, data: bytes | memoryview) -> int:
        if len(data) > 7:
            shortened.append(len(data))
        return real_write(fd, memoryview(data)[:7])

    monkeypatch.setattr("handover.bundle.extract.os.write", at_most_7_bytes)
    into = tmp_path / "opened"
    open_bundle(bundle, [keys[0]], into)
    assert shortened
    for name, data in FILES_A.items():
        assert (into / "0001-web01-www" / name).read_bytes() == data
    assert (into / "0002-db01-db" / "db/acme.dump").read_bytes() == FILES_B["db/acme.dump"]


class RecordedProgress:
    """A ReadProgress that keeps what it is told."""

    def __init__(self) -> None:
        self.advanced = 0
        self.remaining_told: list[tuple[int, int]] = []  # (bytes left, bytes read by then)

    def advance(self, count: int) -> None:
        self.advanced += count

    def remaining(self, count: int) -> None:
        self.remaining_told.append((count, self.advanced))


def test_verify_and_open_report_every_encrypted_byte_they_read(
    bundle: Path, keys: tuple[X25519Identity, SigningKey], tmp_path: Path
) -> None:
    index = (bundle / "index.tar.age").stat().st_size
    volumes = sum(p.stat().st_size for p in (bundle / "volumes").iterdir())
    for read in ("verify", "open"):
        progress = RecordedProgress()
        if read == "verify":
            outcome = verify_bundle_outcome(bundle, [keys[0]], progress=progress)
            assert outcome.problems == []
        else:
            open_bundle_outline(bundle, [keys[0]], tmp_path / "opened", progress=progress)
        # once the index is read, the volumes' bytes are announced; all of it then comes
        assert progress.remaining_told == [(volumes, index)], read
        assert progress.advanced == index + volumes, read
    progress = RecordedProgress()  # without a key: every encrypted file hashed, no total
    assert verify_bundle_outcome(bundle, progress=progress).problems == []
    assert (progress.advanced, progress.remaining_told) == (index + volumes, [])


def test_volumes_added_from_threads_get_distinct_numbers(
    tmp_path: Path, keys: tuple[X25519Identity, SigningKey]
) -> None:
    writer = BundleWriter(tmp_path / "b", [keys[0].recipient()], keys[1])
    records: list[VolumeRecord] = []
    lock = threading.Lock()

    def add(i: int) -> None:
        record = writer.add_volume(MemorySource(f"v{i}", {f"f{i}": os.urandom(50_000)}))
        with lock:
            records.append(record)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.number for r in records) == [1, 2, 3, 4, 5, 6]
    writer.finish()
    assert verify_bundle(tmp_path / "b", [keys[0]]) == []


def test_failed_source_leaves_no_volume_file(
    tmp_path: Path, keys: tuple[X25519Identity, SigningKey]
) -> None:
    writer = BundleWriter(tmp_path / "b", [keys[0].recipient()], keys[1])
    with pytest.raises(ConnectorError, match="producer exited"):
        writer.add_volume(MemorySource("bad", {"a": b"x" * 100_000}, fail=True))
    assert files_of(tmp_path / "b") == []


def test_rerun_after_crash_adopts_finished_volumes(
    tmp_path: Path, keys: tuple[X25519Identity, SigningKey]
) -> None:
    path = tmp_path / "b"
    first = BundleWriter(path, [keys[0].recipient()], keys[1])
    done = first.add_volume(MemorySource("one", {"a": b"1"}))
    (path / "volumes" / ".0002-two.tar.age.abc.tmp").write_bytes(b"half")  # crashed here
    second = BundleWriter(path, [keys[0].recipient()], keys[1])
    assert not list((path / "volumes").glob(".*.tmp"))
    second.adopt_volume(done)
    assert second.add_volume(MemorySource("two", {"b": b"2"})).number == 2
    second.finish()
    assert verify_bundle(path, [keys[0]]) == []


def test_unfinished_bundle_is_reported_incomplete(
    tmp_path: Path, keys: tuple[X25519Identity, SigningKey]
) -> None:
    writer = BundleWriter(tmp_path / "b", [keys[0].recipient()], keys[1])
    writer.add_volume(MemorySource("one", {"a": b"1"}))
    problems = verify_bundle(tmp_path / "b")
    assert problems and problems[0].startswith("SHA256SUMS: missing")


MANIFEST_PIECES = [b'{"a": 1,', b' "b": [1, 2]}']  # 21 bytes


def _counted_rendering(pieces: list[bytes]) -> tuple[Callable[[], Iterator[bytes]], list[int]]:
    """A rendering of `pieces`, and the list it appends to each time it is called."""
    calls: list[int] = []

    def render() -> Iterator[bytes]:
        calls.append(1)
        return iter(pieces)

    return render, calls


def test_a_large_manifest_is_rendered_twice_and_the_two_must_agree(
    tmp_path: Path, keys: tuple[X25519Identity, SigningKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not held between its digest and its writing (memory: issue #16), nor sealed if it moved."""
    from handover.bundle import writer as writer_mod
    from handover.bundle.manifest import Manifest

    render, calls = _counted_rendering(MANIFEST_PIECES)
    pieces = MANIFEST_PIECES
    rendered = writer_mod._Rendered(render, hold=20)  # one byte short of the text
    assert (rendered.size, rendered.sha256) == (21, hashlib.sha256(b"".join(pieces)).hexdigest())
    assert b"".join(rendered.chunks()) == b"".join(pieces)
    assert len(calls) == 2
    for second in ([b'{"a": 2,', b' "b": [1, 2]}'], [b'{"a": 1,'], [*pieces, b" "]):
        renderings = iter([pieces, second])
        moving = writer_mod._Rendered(lambda: iter(next(renderings)), hold=0)  # noqa: B023
        with pytest.raises(BundleError, match="rendered differently"):
            b"".join(moving.chunks())

    monkeypatch.setattr(writer_mod, "MANIFEST_HOLD_BYTES", 0)

    real = Manifest.json_chunks
    renderings = []

    def changing(self: Manifest) -> Iterator[bytes]:
        renderings.append(1)
        if len(renderings) == 2:
            self = self.model_copy(update={"created": "1999-01-01T00:00:00+00:00"})
        return real(self)

    monkeypatch.setattr(Manifest, "json_chunks", changing)
    writer = BundleWriter(tmp_path / "b", [keys[0].recipient()], keys[1])
    writer.add_volume(MemorySource("one", {"a": b"1"}))
    with pytest.raises(BundleError, match="rendered differently"):
        writer.finish()
    assert len(renderings) == 2
    assert not (tmp_path / "b" / "index.tar.age").exists()
    assert not (tmp_path / "b" / "SHA256SUMS").exists()


def test_a_small_manifest_is_rendered_once_and_written_as_rendered(
    tmp_path: Path, keys: tuple[X25519Identity, SigningKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Up to MANIFEST_HOLD_BYTES the first rendering is kept: no second pass to pay or check."""
    from handover.bundle import writer as writer_mod
    from handover.bundle.manifest import Manifest

    render, calls = _counted_rendering(MANIFEST_PIECES)
    pieces = MANIFEST_PIECES
    rendered = writer_mod._Rendered(render, hold=21)  # exactly the text
    assert b"".join(rendered.chunks()) == b"".join(pieces)
    assert rendered.sha256 == hashlib.sha256(b"".join(pieces)).hexdigest()
    assert len(calls) == 1

    real = Manifest.json_chunks
    renderings: list[int] = []

    def counted(self: Manifest) -> Iterator[bytes]:
        renderings.append(1)
        return real(self)

    monkeypatch.setattr(Manifest, "json_chunks", counted)
    writer = BundleWriter(tmp_path / "b", [keys[0].recipient()], keys[1])
    writer.add_volume(MemorySource("one", FILES_A))
    result = writer.finish()
    assert len(renderings) == 1
    assert verify_bundle(tmp_path / "b", [keys[0]]) == []
    with (
        open(tmp_path / "b" / "index.tar.age", "rb") as raw,
        AgeReader(raw, [keys[0]]) as age,  # type: ignore[arg-type]
        tarfile.open(fileobj=age, mode="r|") as tar,  # type: ignore[call-overload]
    ):
        contents = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
    written = contents["MANIFEST.json"]  # the manifest written is the one hashed
    assert hashlib.sha256(written).hexdigest() == result.manifest_sha256
    members = {m.path for m in load_manifest(written, "test").volumes[0].members}
    assert set(FILES_A) <= members


def test_the_readme_keeps_two_file_paths_of_a_volume_at_most(
    tmp_path: Path, keys: tuple[X25519Identity, SigningKey]
) -> None:
    """Enough to tell a one-file volume (a dump) from the rest, without every path (issue #16)."""
    from handover.bundle.writer import _volume_facts

    writer = BundleWriter(tmp_path / "b", [keys[0].recipient()], keys[1])
    many = _volume_facts(writer.add_volume(MemorySource("web01-www", FILES_A)))
    one = _volume_facts(writer.add_volume(MemorySource("db01-db", FILES_B)))
    assert len(many.member_files) == 2 and set(many.member_files) < set(FILES_A)
    assert one.member_files == ["db/acme.dump"]


def flip(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def test_flipped_byte_anywhere_is_reported_on_the_right_file(
    bundle: Path, keys: tuple[X25519Identity, SigningKey]
) -> None:
    rng = random.Random(1234)
    identity = keys[0]
    for name in files_of(bundle):
        path = bundle / name
        size = path.stat().st_size
        positions = {0, size - 1, size // 2, *(rng.randrange(size) for _ in range(10))}
        original = path.read_bytes()
        for position in sorted(positions):
            flip(path, position)
            try:
                problems = verify_bundle(bundle, [identity])
            finally:
                path.write_bytes(original)
            assert problems, f"flip at {name}:{position} went unnoticed"
            owner = "SHA256SUMS" if name.startswith("SHA256SUMS") else name
            assert any(p.startswith(owner) for p in problems), (name, position, problems)


def test_truncated_volume(bundle: Path, keys: tuple[X25519Identity, SigningKey]) -> None:
    volume = bundle / "volumes" / "0001-web01-www.tar.age"
    volume.write_bytes(volume.read_bytes()[:-100])
    problems = verify_bundle(bundle, [keys[0]])
    assert problems[0] == (
        "volumes/0001-web01-www.tar.age: SHA-256 does not match SHA256SUMS (corrupted or tampered)"
    )
    assert any("truncated" in p or "failed authentication" in p for p in problems)


def test_missing_and_extra_files(bundle: Path) -> None:
    (bundle / "volumes" / "0002-db01-db.tar.age").unlink()
    (bundle / "volumes" / "0003-intruder.tar.age").write_bytes(b"x")
    assert verify_bundle(bundle) == [
        "volumes/0002-db01-db.tar.age: listed in SHA256SUMS but missing",
        "volumes/0003-intruder.tar.age: not listed in SHA256SUMS (extra file)",
    ]


def test_wrong_identity_is_reported(bundle: Path) -> None:
    problems = verify_bundle(bundle, [X25519Identity.generate()])
    assert len(problems) == 1
    assert problems[0].startswith("index.tar.age: none of the 1 identities")


def test_wrong_signer_is_reported(bundle: Path) -> None:
    other = SigningKey.generate().public_line("other")
    problems = verify_bundle(bundle, signer=other)
    assert len(problems) == 1
    assert problems[0].startswith("SHA256SUMS.sig: signature of SHA256SUMS does not verify")


def test_replaced_provider_key_and_signature_fail_against_the_real_signer(
    bundle: Path, keys: tuple[X25519Identity, SigningKey], tmp_path: Path
) -> None:
    """Someone who re-signs with their own key passes provider.pub, not the known signer."""
    from handover.bundle.sshsig import sign

    mallory = SigningKey.generate()
    (bundle / "provider.pub").write_text(mallory.public_line("provider") + "\n")
    sums = parse_sums((bundle / "SHA256SUMS").read_bytes(), "x")
    sums["provider.pub"] = hashlib.sha256((bundle / "provider.pub").read_bytes()).hexdigest()
    from handover.bundle.sums import render_sums

    (bundle / "SHA256SUMS").write_bytes(render_sums(sums))
    (bundle / "SHA256SUMS.sig").write_text(
        sign((bundle / "SHA256SUMS").read_bytes(), mallory, "handover-bundle")
    )
    assert verify_bundle(bundle) == []  # self-consistent...
    signer = tmp_path / "provider.pub"
    signer.write_text(keys[1].public_line("provider") + "\n")
    assert verify_bundle(bundle, signer=signer)[0].startswith("SHA256SUMS.sig: signature")


def hostile_bundle(
    path: Path, keys: tuple[X25519Identity, SigningKey], info: tarfile.TarInfo
) -> Path:
    """A signed, self-consistent bundle whose one volume holds a hostile member."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        ok = tarfile.TarInfo("ok.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        tar.addfile(info, io.BytesIO(b"evil") if info.size else None)
    tar_data = out.getvalue()
    relpath = "volumes/0001-evil.tar.age"
    (path / "volumes").mkdir(parents=True)
    with open(path / relpath, "wb") as raw, AgeWriter(raw, [keys[0].recipient()]) as age:  # type: ignore[arg-type]
        age.write(tar_data)
    encrypted = (path / relpath).read_bytes()
    record = VolumeRecord(
        number=1,
        file=relpath,
        label="evil",
        origin="test",
        size=len(encrypted),
        sha256=hashlib.sha256(encrypted).hexdigest(),
        tar_size=len(tar_data),
        members=[MemberRecord(path=info.name, size=info.size, mode=0o644, mtime=0)],
    )
    writer = BundleWriter(DirectoryTarget(path), [keys[0].recipient()], keys[1])
    writer.adopt_volume(record)
    writer.finish()
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = 4 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize(
    ("info", "message"),
    [
        (_member("../escape.txt"), "points outside"),
        (_member("/etc/cron.d/evil"), "absolute path"),
        (_member("link", tarfile.SYMTYPE, ""), "symbolic link with an empty target"),
        (_member("hard", tarfile.LNKTYPE, "gone.txt"), "hard link to 'gone.txt', which is not"),
        (_member("fifo", tarfile.FIFOTYPE), "FIFO"),
        (_member("dev", tarfile.CHRTYPE), "character device"),
    ],
)
def test_open_refuses_hostile_members_and_leaves_into_untouched(
    tmp_path: Path, keys: tuple[X25519Identity, SigningKey], info: tarfile.TarInfo, message: str
) -> None:
    path = hostile_bundle(tmp_path / "b", keys, info)
    assert verify_bundle(path) == []  # signed and listed: only the contents are hostile
    into = tmp_path / "into"
    with pytest.raises(BundleCorrupt, match=message) as caught:
        open_bundle(path, [keys[0]], into)
    assert "volumes/0001-evil.tar.age" in str(caught.value)
    assert not into.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no staging left behind
    assert not (tmp_path / "escape.txt").exists()


def test_open_refuses_tampered_bundle_and_writes_nothing(
    bundle: Path, keys: tuple[X25519Identity, SigningKey], tmp_path: Path
) -> None:
    volume = bundle / "volumes" / "0002-db01-db.tar.age"
    flip(volume, volume.stat().st_size - 20)
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(BundleCorrupt, match=r"0002-db01-db\.tar\.age"):
        open_bundle(bundle, [keys[0]], into)
    assert list(into.iterdir()) == []


def test_open_accepts_the_zero_padding_tarfile_leaves_after_the_end_of_archive(
    tmp_path: Path, keys: tuple[X25519Identity, SigningKey]
) -> None:
    """Volumes whose end-of-archive falls near a 1 MiB read boundary were refused as damaged."""
    for size in range((1 << 20) - 4096, (1 << 20) - 1024, 512):
        path = tmp_path / f"b{size}"
        writer = BundleWriter(path, [keys[0].recipient()], keys[1])
        writer.add_volume(MemorySource("v", {"f.bin": b"x" * size}))
        writer.finish()
        open_bundle(path, [keys[0]], tmp_path / f"o{size}")
        assert (tmp_path / f"o{size}" / "0001-v" / "f.bin").stat().st_size == size


def test_open_refuses_a_non_empty_destination(
    bundle: Path, keys: tuple[X25519Identity, SigningKey], tmp_path: Path
) -> None:
    into = tmp_path / "into"
    into.mkdir()
    (into / "keep").write_text("mine")
    with pytest.raises(UsageError, match="must be an empty folder"):
        open_bundle(bundle, [keys[0]], into)


def test_volume_with_links_seals_verifies_and_opens_them_as_links(
    tmp_path: Path, keys: tuple[X25519Identity, SigningKey]
) -> None:
    """Links are client data (tar -x restores them): verify passes them, open restores them."""
    writer = BundleWriter(tmp_path / "b", [keys[0].recipient()], keys[1])
    record = writer.add_volume(
        MemorySource("l", {"d/a": b"a"}, links={"d/l": "a", "d/etc": "/etc"})
    )
    writer.finish()
    link = next(m for m in record.members if m.path == "d/l")
    assert (link.type, link.link) == ("symlink", "a")
    assert verify_bundle(tmp_path / "b") == []
    assert verify_bundle(tmp_path / "b", [keys[0]]) == []
    notes: list[str] = []
    open_bundle(tmp_path / "b", [keys[0]], tmp_path / "into", notes=notes)
    folder = tmp_path / "into" / "0001-l" / "d"
    assert os.readlink(folder / "l") == "a" and (folder / "l").read_bytes() == b"a"
    assert os.readlink(folder / "etc") == "/etc"
    assert (
        notes[-1].startswith("1 symbolic link(s) point outside") and "'0001-l/d/etc'" in notes[-1]
    )


def test_writer_refuses_no_recipient(
    keys: tuple[X25519Identity, SigningKey], tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="at least one recipient"):
        BundleWriter(tmp_path, [], keys[1])


def test_document_names_are_checked(
    tmp_path: Path, keys: tuple[X25519Identity, SigningKey]
) -> None:
    writer = BundleWriter(tmp_path / "b", [keys[0].recipient()], keys[1])
    with pytest.raises(UsageError, match="document name"):
        writer.finish(documents={"../x": b""})


def test_snapshot_hashes_without_writing(tmp_path: Path) -> None:
    members = snapshot_source(MemorySource("s", {"x/y": b"data"}))
    assert [(m.path, m.sha256) for m in members] == [("x/y", hashlib.sha256(b"data").hexdigest())]


def test_bundle_error_for_non_tar_source(
    tmp_path: Path, keys: tuple[X25519Identity, SigningKey]
) -> None:
    source = MemorySource("junk", {})
    source.data = os.urandom(2048)
    writer = BundleWriter(tmp_path / "b", [keys[0].recipient()], keys[1])
    with pytest.raises(BundleError, match=r"volumes/0001-junk\.tar\.age: not a tar stream"):
        writer.add_volume(source)
    assert files_of(tmp_path / "b") == []


def test_damaged_volume_is_reported_even_without_a_matching_identity(bundle: Path) -> None:
    flip(bundle / "volumes" / "0002-db01-db.tar.age", 500)
    problems = verify_bundle(bundle, [X25519Identity.generate()])
    assert problems[0].startswith("index.tar.age: none of the 1 identities")
    assert problems[1].startswith("volumes/0002-db01-db.tar.age: SHA-256 does not match")
