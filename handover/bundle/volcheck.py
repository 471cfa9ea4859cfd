"""Compare what a volume holds with MANIFEST.json and its own SHA256SUMS without holding either.

A volume of a million files lists a million members in the manifest and a
million lines in its `SHA256SUMS`; keeping them to compare as sets cost
hundreds of megabytes. Both comparisons are set (multiset) equalities, so
each side is folded into a keyed additive multiset hash instead: the sum,
modulo 2**256, of a keyed BLAKE2b of each element, with the element count.
The key is drawn when the reader starts, after the bundle was written, so
its author cannot aim for a collision (two different multisets agree with
probability about 2**-200). Only the member tuples of small volumes are
kept, to name the members that differ.
"""

from __future__ import annotations

import hashlib
from typing import Any

from handover.bundle.pathtable import PathTable
from handover.bundle.sums import SUMS_NAME, sums_entry
from handover.bundle.tarparse import Row, extract_path
from handover.errors import BundleError

_MASK = (1 << 256) - 1
MAX_SUMS_LINE = 64 << 10  # a path is at most 4000 bytes, escaped at most twice as long
Member = tuple[str, str, int, str | None, str | None]  # path, type, size, sha256, link


class MultisetDigest:
    """Order-independent digest of a multiset of tuples of str, int and None."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self.value = 0
        self.count = 0

    def add(self, item: tuple[Any, ...]) -> None:
        data = repr(item).encode("utf-8", "surrogatepass")
        digest = hashlib.blake2b(data, key=self._key, digest_size=32).digest()
        self.value = (self.value + int.from_bytes(digest, "big")) & _MASK
        self.count += 1

    def same(self, other: MultisetDigest) -> bool:
        return self.value == other.value and self.count == other.count


def hardlink_key(number: int, path: str) -> str:
    """Key of a hard link target of volume `number` in the reader's PathTable."""
    return f"{number}\0{path}"


class VolumeCheck:
    """The rows sink of a volume's TarParser: folds each member instead of keeping it.

    `members` digests (path, type, size, sha256, link) of every member;
    `sums` digests the {path: sha256} map a writer's SHA256SUMS holds
    (regular files, and hard links with their target's digest). Targets of
    hard links are known from the manifest (`targets`), so only their
    digests are remembered, in a PathTable.
    """

    def __init__(self, number: int, key: bytes, targets: PathTable | None, retain: bool) -> None:
        self._number = number
        self._targets = targets  # None: the manifest lists no hard link in this volume
        self.members = MultisetDigest(key)
        self.sums = MultisetDigest(key)
        self.retained: list[Member] | None = [] if retain else None

    def append(self, row: Row) -> None:
        path, kind, size, digest, _mode, _mtime, link = row
        item = (path, kind, size, digest, link)
        self.members.add(item)
        if self.retained is not None:
            self.retained.append(item)
        if kind == "file" and digest is not None:
            self.sums.add((path, digest))
            if self._targets is not None:
                key = hardlink_key(self._number, path)
                if self._targets.get(key) is not None:
                    self._targets.set(key, "file", digest)
        elif kind == "hardlink" and link is not None and self._targets is not None:
            found = self._targets.get(hardlink_key(self._number, extract_path(link)))
            if found is not None and found[1] is not None:
                self.sums.add((path, found[1]))


class SumsCheck:
    """Reads a `SHA256SUMS` member line by line as the parser passes its data on."""

    def __init__(self, where: str, key: bytes) -> None:
        self.where = where
        self._key = key
        self.begin()

    def begin(self) -> None:
        self.digest = MultisetDigest(self._key)
        self.error: str | None = None
        self._partial = b""
        self._number = 0

    def write(self, view: Any) -> None:
        if self.error is not None:
            return
        data = self._partial + bytes(view) if self._partial else bytes(view)
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            self._line(raw)
        if len(self._partial) > MAX_SUMS_LINE and self.error is None:
            self.error = (
                f"{self.where}: line {self._number + 1} is longer than {MAX_SUMS_LINE} bytes"
            )

    def end(self) -> None:
        if self._partial and self.error is None:
            self._line(self._partial)
        self._partial = b""

    def _line(self, raw: bytes) -> None:
        self._number += 1
        if self.error is not None:
            return
        try:
            entry = sums_entry(raw, self._number, self.where)
        except BundleError as exc:  # a line that is not a sha256sum line
            self.error = str(exc)
            return
        if entry is not None:
            self.digest.add(entry)


__all__ = ["SUMS_NAME", "Member", "MultisetDigest", "SumsCheck", "VolumeCheck", "hardlink_key"]
