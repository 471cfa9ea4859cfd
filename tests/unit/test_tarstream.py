"""The tar stream parser: members hashed on the way, SHA256SUMS appended, stream unchanged."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from handover.bundle.pump import pump_tar, seal_trailer
from handover.bundle.sums import parse_sums, render_sums
from handover.bundle.tarparse import TarParser
from handover.errors import BundleError
from tests.conftest import require_binary


def python_tar(files: dict[str, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A tar stream written by Python's tarfile (files, plus dirs ending in '/')."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime = 1_700_000_000
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o640
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def seal_bytes(data: bytes, read_size: int = 1 << 20) -> tuple[bytes, TarParser]:
    parser = TarParser("test-volume")
    out = io.BytesIO()
    written = pump_tar(io.BytesIO(data), parser, out, trailer=seal_trailer, read_size=read_size)
    assert written == len(out.getvalue())
    return out.getvalue(), parser


def feed_in_pieces(data: bytes, piece: int) -> TarParser:
    parser = TarParser("pieces")
    view = memoryview(data)
    for start in range(0, len(data), piece):
        parser.feed(view[start : start + piece])
    parser.close()
    return parser


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_python_pax_stream_members_hashed_and_sums_member_appended() -> None:
    files = {
        "data/": b"",
        "data/empty": b"",
        "data/a.txt": b"hello\n",
        "data/" + "é" * 150 + ".txt": b"unicode long name",
        "data/" + "/".join(["deep"] * 40) + "/x": b"long path",
    }
    sealed, parser = seal_bytes(python_tar(files))
    members = {m.path: m for m in parser.members()}
    assert members["data"].type == "dir"
    assert members["data/empty"].sha256 == sha(b"")
    assert members["data/a.txt"].sha256 == sha(b"hello\n")
    assert members["data/a.txt"].mode == 0o640
    assert members["data/a.txt"].mtime == 1_700_000_000
    assert members["data/" + "é" * 150 + ".txt"].size == len(b"unicode long name")
    with tarfile.open(fileobj=io.BytesIO(sealed)) as tar:
        names = tar.getnames()
        assert names[-1] == "SHA256SUMS"
        sums_file = tar.extractfile("SHA256SUMS")
        assert sums_file is not None
        sums = parse_sums(sums_file.read(), "SHA256SUMS")
    assert sums == {path: sha(data) for path, data in files.items() if not path.endswith("/")}


def test_stream_passes_through_unchanged_up_to_end_of_archive() -> None:
    original = python_tar({"a": b"x" * 1000, "b": b"y" * 512})
    sealed, parser = seal_bytes(original)
    assert sealed[: parser.archive_size] == original[: parser.archive_size]
    assert len(sealed) % 10240 == 0


@pytest.mark.parametrize("piece", [1, 7, 511, 512, 513, 4096, 10240])
def test_any_split_of_the_stream_gives_the_same_members(piece: int) -> None:
    files = {f"d/f{size}": os.urandom(size) for size in (0, 1, 511, 512, 513, 1024, 1025, 5000)}
    files["d/" + "ü" * 120] = b"long"
    data = python_tar(files, tarfile.GNU_FORMAT)
    parser = feed_in_pieces(data, piece)
    assert parser.sums() == {path: sha(content) for path, content in files.items()}


def test_gnu_longname_and_longlink_headers() -> None:
    out = io.BytesIO()
    target = "t/" + "k" * 200
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(target)
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
        link = tarfile.TarInfo("t/" + "l" * 200)
        link.type = tarfile.SYMTYPE
        link.linkname = target
        tar.addfile(link)
        hard = tarfile.TarInfo("t/hard")
        hard.type = tarfile.LNKTYPE
        hard.linkname = target
        tar.addfile(hard)
    parser = feed_in_pieces(out.getvalue(), 1 << 20)
    members = {m.path: m for m in parser.members()}
    assert members["t/" + "l" * 200].type == "symlink"
    assert members["t/" + "l" * 200].link == target
    assert members["t/hard"].type == "hardlink"
    # the hard link is a file after tar -x: checked with its target's content
    assert parser.sums() == {target: sha(b"abc"), "t/hard": sha(b"abc")}


def test_sums_are_the_same_from_packed_rows_and_follow_the_last_member() -> None:
    """A file replaced by a later member, a hard link to a replaced file, odd names: both sinks."""
    from handover.bundle.members import MemberTable
    from handover.bundle.sums import sorted_paths

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, data: bytes | None = None, **kind: object) -> None:
            info = tarfile.TarInfo(name)
            for key, value in kind.items():
                setattr(info, key, value)
            info.size = len(data or b"")
            tar.addfile(info, io.BytesIO(data or b""))

        add("a/x", b"first")
        add("a/hard", type=tarfile.LNKTYPE, linkname="a/x")  # the first a/x
        add("a/x", b"second")
        add("a/gone", b"file")
        add("a/gone", type=tarfile.DIRTYPE)  # no longer a file
        add("b/\u00e9t\u00e9", b"accent")
        add("b/Z", b"upper")
        add("b/\udcff", b"not utf-8")  # a name tar gave as bytes that are not UTF-8
    expected = {
        "a/x": sha(b"second"),
        "a/hard": sha(b"first"),
        "b/\u00e9t\u00e9": sha(b"accent"),
        "b/Z": sha(b"upper"),
        "b/\udcff": sha(b"not utf-8"),
    }
    listed = feed_in_pieces(out.getvalue(), 1 << 20)
    packed = TarParser("packed", rows=MemberTable())
    packed.feed(memoryview(out.getvalue()))
    packed.close()
    for parser in (listed, packed):
        assert dict(parser.sums()) == expected
        assert sorted_paths(parser.sums()) == sorted(
            expected, key=lambda p: p.encode("utf-8", "surrogateescape")
        )
    ascii_only = {"b/Z": "0", "a/y": "1", "a/Y": "2", "a-": "3"}
    assert sorted_paths(ascii_only) == ["a-", "a/Y", "a/y", "b/Z"]


def test_gnu_tar_tree_extracts_and_passes_sha256sum(tmp_path: Path) -> None:
    tar = require_binary("tar", "tar")
    require_binary("sha256sum", "coreutils")
    tree = tmp_path / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "empty").write_bytes(b"")
    (tree / "sub" / "données été.txt").write_bytes("unicode ✓".encode())
    (tree / "sub" / ("n" * 180)).write_bytes(b"long name")
    (tree / "sub" / "odd\nname\\x").write_bytes(b"newline and backslash")
    (tree / "sub" / "deeper" / "block").write_bytes(os.urandom(512 * 3))
    (tree / "link").symlink_to("empty")
    for i in range(200):
        (tree / "sub" / "deeper" / f"small{i}").write_bytes(os.urandom(i))
    stream = subprocess.run(
        [tar, "-cf", "-", "--format=posix", "-C", str(tmp_path), "tree"],
        check=True,
        capture_output=True,
    ).stdout
    sealed, parser = seal_bytes(stream, read_size=4096)
    assert len(parser.sums()) == 205
    extract = tmp_path / "x"
    extract.mkdir()
    subprocess.run([tar, "-x", "-C", str(extract)], input=sealed, check=True)
    check = subprocess.run(
        ["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=extract, capture_output=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(b": OK") == 205
    link = next(m for m in parser.members() if m.path == "tree/link")
    assert (link.type, link.link) == ("symlink", "empty")


def test_many_small_files_all_recorded() -> None:
    files = {f"many/{i:05d}": str(i).encode() for i in range(5000)}
    _, parser = seal_bytes(python_tar(files, tarfile.GNU_FORMAT))
    assert len(parser.rows) == 5000
    assert parser.sums()["many/04999"] == sha(b"4999")


def test_root_sha256sums_member_is_refused() -> None:
    data = python_tar({"SHA256SUMS": b"evil"})
    with pytest.raises(BundleError, match="collide with the SHA256SUMS"):
        seal_bytes(data)


def test_nested_sha256sums_is_fine() -> None:
    _, parser = seal_bytes(python_tar({"d/SHA256SUMS": b"theirs"}))
    assert parser.sums() == {"d/SHA256SUMS": sha(b"theirs")}


def test_dotdot_member_is_refused() -> None:
    with pytest.raises(BundleError, match=r"outside the archive"):
        seal_bytes(python_tar({"a/../../etc/passwd": b"x"}))


def test_absolute_names_are_recorded_as_tar_extracts_them() -> None:
    _, parser = seal_bytes(python_tar({"/etc/hosts": b"127.0.0.1"}))
    assert list(parser.sums()) == ["etc/hosts"]


def test_truncated_stream_is_an_error() -> None:
    data = python_tar({"a": b"x" * 5000})
    with pytest.raises(BundleError, match="truncated inside a member"):
        seal_bytes(data[:1536])
    with pytest.raises(BundleError, match="without an end-of-archive"):
        seal_bytes(data[: 512 + 5120])  # header + padded data, no end marker


def test_garbage_is_not_a_tar_stream() -> None:
    with pytest.raises(BundleError, match="not a tar stream"):
        seal_bytes(os.urandom(4096))


def test_data_after_end_of_archive_is_an_error() -> None:
    data = python_tar({"a": b"x"}) + b"junk"
    with pytest.raises(BundleError, match="after the tar end-of-archive"):
        seal_bytes(data)


def test_base256_and_pax_sizes_beyond_8_gib() -> None:
    big = 9 * 1024**3 + 5
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        info = tarfile.TarInfo("huge.bin")
        info.size = big
        header = info.tobuf(fmt, "utf-8", "surrogateescape")
        parser = TarParser("huge")
        parser.feed(memoryview(header + b"\1" * 1024))
        assert parser._content_left == big - 1024  # the size was read, data is being hashed
        assert parser._data_left == big + (-big % 512) - 1024


def test_sparse_members_are_refused() -> None:
    info = tarfile.TarInfo("s")
    info.type = tarfile.GNUTYPE_SPARSE
    with pytest.raises(BundleError, match="sparse"):
        feed_in_pieces(info.tobuf(tarfile.GNU_FORMAT, "utf-8", "strict") + bytes(1024), 512)


def test_sums_round_trip_with_escaped_names() -> None:
    entries = {"a\nb": sha(b"1"), "c\\d": sha(b"2"), "plain": sha(b"3"), "e\rf": sha(b"4")}
    text = render_sums(entries)
    assert text.startswith(b"\\")
    assert parse_sums(text, "x") == entries


def test_sink_errors_propagate_and_stop_the_pipeline() -> None:
    class Broken:
        def write(self, data: object) -> int:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        pump_tar(
            io.BytesIO(python_tar({"a": b"x" * 3_000_000})),
            TarParser("v"),
            Broken(),
            trailer=seal_trailer,
            read_size=65536,
        )


def test_source_errors_propagate() -> None:
    class Failing(io.RawIOBase):
        def readinto(self, buffer: object) -> int:
            raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        pump_tar(Failing(), TarParser("v"), io.BytesIO(), trailer=seal_trailer)  # type: ignore[arg-type]


def test_progress_counts_every_byte() -> None:
    data = python_tar({"a": os.urandom(300_000)})
    seen: list[int] = []
    pump_tar(io.BytesIO(data), TarParser("v"), None, progress=seen.append, read_size=65536)
    assert sum(seen) == len(data)


def test_trailer_in_pieces_is_the_whole_member_and_end_of_archive() -> None:
    """The streamed trailer has the bytes of the member rendered whole (odd names, sort order)."""
    from handover.bundle.sums import end_of_archive, sums_trailer_chunks

    entries = {f"dir/f{n:05d}-{'é' * (n % 7)}.txt": sha(str(n).encode()) for n in range(3000)}
    entries["odd\nname\\x"] = sha(b"odd")
    entries["not-utf8-\udcff"] = sha(b"raw")
    text = render_sums(entries)
    info = tarfile.TarInfo("SHA256SUMS")
    info.size, info.mode, info.mtime = len(text), 0o644, 1_700_000_000
    header = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
    whole = header + text + bytes(-len(text) % tarfile.BLOCKSIZE)
    expected = whole + end_of_archive(12_345 + len(whole))
    chunks = list(sums_trailer_chunks(entries, 12_345, mtime=1_700_000_000))
    assert b"".join(chunks) == expected
    assert len(chunks) > 3 and max(len(c) for c in chunks) < (1 << 16) + 1024
    assert (12_345 + len(b"".join(chunks))) % tarfile.RECORDSIZE == 0


def test_large_trailer_goes_through_the_pool_and_tar_reads_it() -> None:
    """A trailer larger than the pump's buffers is cut across them, and the volume is intact."""
    files = {f"d/{n:05d}": str(n).encode() for n in range(12_000)}  # SHA256SUMS ~0.9 MB
    sealed, _ = seal_bytes(python_tar(files), read_size=64 * 1024)
    with tarfile.open(fileobj=io.BytesIO(sealed)) as tar:
        member = tar.getmember("SHA256SUMS")
        extracted = tar.extractfile(member)
        assert extracted is not None
        sums = parse_sums(extracted.read(), "SHA256SUMS")
    assert member.size > 4 * 64 * 1024
    assert sums == {name: sha(data) for name, data in files.items()}
    assert len(sealed) % tarfile.RECORDSIZE == 0


def test_trailer_turn_is_given_back_when_the_target_fails() -> None:
    """A volume whose target fails while its trailer passes does not block the next volume's."""
    from handover.bundle import pump

    files = {f"d/{n:05d}": str(n).encode() for n in range(12_000)}
    data = python_tar(files)

    class FailsAtTheTrailer(io.BytesIO):
        def write(self, chunk: object) -> int:
            if self.tell() > len(data) + 100_000:  # inside the trailer (~0.9 MB)
                raise OSError(28, "No space left on device")
            return super().write(chunk)  # type: ignore[arg-type]

    sink = FailsAtTheTrailer()
    with pytest.raises(OSError, match="No space"):  # 64 KiB buffers: the trailer spans 14
        pump_tar(io.BytesIO(data), TarParser("v"), sink, trailer=seal_trailer, read_size=1 << 16)
    assert sink.tell() > len(data)  # it failed inside the trailer
    assert pump._TRAILER_TURN.acquire(timeout=5)
    pump._TRAILER_TURN.release()
    sealed, _ = seal_bytes(data)  # and the next volume seals
    assert sealed.startswith(data[:512])
