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

from handover.errors import BundleError

SUMS_NAME = "SHA256SUMS"
_HEX_DIGITS = "0123456789abcdef"


def sums_line(digest: str, path: str) -> str:
    """One `sha256sum` line, escaped the way GNU coreutils escapes odd names."""
    if "\\" in path or "\n" in path or "\r" in path:
        escaped = path.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        return f"\\{digest}  {escaped}\n"
    return f"{digest}  {path}\n"


def render_sums(entries: dict[str, str]) -> bytes:
    """`sha256sum` file for {path: hex digest}, sorted by path bytes like `sort` in C locale."""
    ordered = sorted(entries.items(), key=lambda item: item[0].encode("utf-8", "surrogateescape"))
    text = "".join(sums_line(digest, path) for path, digest in ordered)
    return text.encode("utf-8", "surrogateescape")


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


def sums_member(data: bytes, mtime: float | None = None) -> bytes:
    """The tar bytes of a `SHA256SUMS` member (header, data, padding)."""
    info = tarfile.TarInfo(SUMS_NAME)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = int(time.time() if mtime is None else mtime)
    header = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
    padding = -len(data) % tarfile.BLOCKSIZE
    return header + data + bytes(padding)


def end_of_archive(offset: int) -> bytes:
    """Two zero blocks, then zeros up to the next 10 KiB record, as GNU tar ends an archive."""
    size = 2 * tarfile.BLOCKSIZE
    size += -(offset + size) % tarfile.RECORDSIZE
    return bytes(size)
