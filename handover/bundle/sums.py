"""The `SHA256SUMS` format: what `sha256sum -c` reads, and the tar member that carries it.

Before the end-of-archive blocks the sealer appends a `SHA256SUMS` member in
`sha256sum` format, with paths exactly as `tar -x` creates them, so a client
runs `sha256sum -c SHA256SUMS` in the extracted folder and needs nothing
else. The outer `SHA256SUMS` of a bundle and the one of the index use the
same format. Separate from the tar parser because documents and backups
write and read this format without parsing any tar stream.
"""

from __future__ import annotations

import tarfile
import time
from collections.abc import Iterable, Iterator, Mapping

from handover.errors import BundleError

SUMS_NAME = "SHA256SUMS"
_HEX_DIGITS = "0123456789abcdef"
#: about how many bytes `sums_trailer_chunks` gathers into each piece
TRAILER_CHUNK = 1 << 16
_SIZE_ONLY = "0" * 64  # a digest's place in a line: the lines' size needs no digest


def sums_line(digest: str, path: str) -> str:
    """One `sha256sum` line, escaped the way GNU coreutils escapes odd names."""
    if "\\" in path or "\n" in path or "\r" in path:
        escaped = path.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        return f"\\{digest}  {escaped}\n"
    return f"{digest}  {path}\n"


def _path_bytes(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")


def sums_lines(entries: Mapping[str, str], ordered: Iterable[str] | None = None) -> Iterator[bytes]:
    """The lines of the `sha256sum` file for {path: hex digest}, one at a time.

    Sorted by path bytes like `sort` in C locale, unless `ordered` (the paths
    of `entries` in that order, from `sorted_paths`) is given.
    """
    for path in sorted_paths(entries) if ordered is None else ordered:
        yield sums_line(entries[path], path).encode("utf-8", "surrogateescape")


def sorted_paths(entries: Mapping[str, str]) -> list[str]:
    """The paths of `entries` sorted by their bytes, as `sha256sum` files list them.

    ASCII names sort the same as text and as bytes, so they are sorted without
    a key: the keys (the bytes of every path) were held while a volume ended.
    """
    if all(path.isascii() for path in entries):
        return sorted(entries)
    return sorted(entries, key=_path_bytes)


def render_sums(entries: Mapping[str, str]) -> bytes:
    """`sha256sum` file for {path: hex digest}, sorted by path bytes like `sort` in C locale."""
    return b"".join(sums_lines(entries))


def parse_sums(data: bytes, where: str) -> dict[str, str]:
    """Read a `sha256sum` file into {path: hex digest}; raises BundleCorrupt-worthy BundleError."""
    entries: dict[str, str] = {}
    for number, raw in enumerate(data.split(b"\n"), 1):
        entry = sums_entry(raw, number, where)
        if entry is not None:
            entries[entry[0]] = entry[1]
    return entries


def sums_entry(raw: bytes, number: int, where: str) -> tuple[str, str] | None:
    """One line (without its LF) as (path, digest); None for an empty line.

    Apart from `parse_sums` so that a reader can take a large `SHA256SUMS`
    line by line as it streams past, without holding it.
    """
    if not raw:
        return None
    line = raw.decode("utf-8", "surrogateescape")
    escaped = line.startswith("\\")
    if escaped:
        line = line[1:]
    digest, sep, path = line.partition("  ")
    if not sep or len(digest) != 64 or digest.strip(_HEX_DIGITS):  # strip: hex at both ends
        if not sep and line[64:65] == " " and line[65:66] == "*":  # binary-mode marker
            digest, path = line[:64], line[66:]
        else:
            raise BundleError(f"{where}: line {number} is not a sha256sum line")
    if escaped:
        path = _unescape(path)
    return path, digest


def _unescape(path: str) -> str:
    out: list[str] = []
    chars = iter(path)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append({"n": "\n", "r": "\r", "\\": "\\"}.get(nxt, "\\" + nxt))
        else:
            out.append(char)
    return "".join(out)


def sums_trailer_chunks(
    entries: Mapping[str, str], offset: int, mtime: float | None = None
) -> Iterator[bytes]:
    """A `SHA256SUMS` member for `entries` then end-of-archive blocks, in pieces of ~64 KiB.

    The member (header, `render_sums(entries)`, padding) then
    `end_of_archive`, never held whole: a volume of 30,000 files has a 3 MB
    file of sums, which as one text was held four times over (lines, text,
    bytes, member) while the volume ended, and an exit's volumes often end
    together. `offset`: the archive's size before this member. The lines are
    rendered twice (their size goes in the header first; that pass reads no
    digest, which `entries` may look up on each read: see `FileSums`).
    """
    ordered = sorted_paths(entries)
    size = sum(
        len(sums_line(_SIZE_ONLY, path).encode("utf-8", "surrogateescape")) for path in ordered
    )
    info = tarfile.TarInfo(SUMS_NAME)
    info.size = size
    info.mode = 0o644
    info.mtime = int(time.time() if mtime is None else mtime)
    header = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
    batch = [header]
    gathered = len(header)
    for line in sums_lines(entries, ordered):
        batch.append(line)
        gathered += len(line)
        if gathered >= TRAILER_CHUNK:
            yield b"".join(batch)
            batch.clear()
            gathered = 0
    padding = -size % tarfile.BLOCKSIZE
    batch.append(bytes(padding))
    batch.append(end_of_archive(offset + len(header) + size + padding))
    yield b"".join(batch)


def end_of_archive(offset: int) -> bytes:
    """Two zero blocks, then zeros up to the next 10 KiB record, as GNU tar ends an archive."""
    size = 2 * tarfile.BLOCKSIZE
    size += -(offset + size) % tarfile.RECORDSIZE
    return bytes(size)
