"""A map from member paths to small facts that stays small in memory: spilled to disk past a limit.

Reading a volume back, the member policy must remember every path it met
(a path twice, a member under a file or a link, a hard link to an earlier
file), and a volume may hold millions of members. Up to `memory_limit`
entries the map is a dict; beyond, it moves to a SQLite database in a
private temporary folder, with an in-memory batch of recent writes in
front of it. Paths are client file names and `handover verify` writes no
plaintext anywhere: on disk a path is only its keyed BLAKE2b digest, with
a key that lives in this process alone, so the file says nothing of the
names (and two names colliding on 128 bits is not a concern).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import tempfile
import weakref
from pathlib import Path

from handover.errors import HandoverError

MEMORY_LIMIT = 100_000  # entries kept as a dict: ~15 MB of typical paths
BATCH = 20_000  # writes held in memory before one executemany
BLOOM_BYTES = 8 << 20  # once on disk: 4 bits per path; 5% false "maybe" at 10M paths
_KINDS = ("file", "dir", "symlink", "hardlink", "char", "block", "fifo")
_CODE = {kind: code for code, kind in enumerate(_KINDS)}
Value = tuple[str, str | None]  # (kind, sha256 hex or None)


class PathTableError(HandoverError):
    """The table cannot be kept on disk (no room, no temporary folder): not the bundle's fault."""


def _remove(folder: str, connection: sqlite3.Connection) -> None:
    connection.close()
    shutil.rmtree(folder, ignore_errors=True)


class PathTable:
    """{path: (kind, digest)}: a dict up to `memory_limit` entries, then SQLite on disk."""

    def __init__(self, memory_limit: int | None = None) -> None:
        self._memory_limit = MEMORY_LIMIT if memory_limit is None else memory_limit
        self._dict: dict[str, Value | str] | None = {}  # a bare kind when there is no digest
        self._db: sqlite3.Connection | None = None
        self._pending: dict[bytes, Value] = {}
        self._bloom = bytearray()
        self._key = os.urandom(32)
        self._finalizer: weakref.finalize[..., PathTable] | None = None
        self.spilled_to: Path | None = None

    def __len__(self) -> int:
        if self._dict is not None:
            return len(self._dict)
        assert self._db is not None
        self._flush()
        return int(self._db.execute("SELECT count(*) FROM t").fetchone()[0])

    def get(self, path: str) -> Value | None:
        if self._dict is not None:
            value = self._dict.get(path)
            return (value, None) if isinstance(value, str) else value
        key = self._hash(path)
        found = self._pending.get(key)
        if found is not None:
            return found
        if not self._maybe(key):
            return None
        assert self._db is not None
        try:
            row = self._db.execute("SELECT kind, digest FROM t WHERE k = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc
        if row is None:
            return None
        return _KINDS[row[0]], (row[1].hex() if row[1] is not None else None)

    def kind(self, path: str) -> str | None:
        value = self.get(path)
        return None if value is None else value[0]

    def set(self, path: str, kind: str, digest: str | None = None) -> None:
        if self._dict is not None:
            self._dict[path] = kind if digest is None else (kind, digest)
            if len(self._dict) > self._memory_limit:
                self._spill()
            return
        key = self._hash(path)
        self._remember(key)
        self._pending[key] = (kind, digest)
        if len(self._pending) >= BATCH:
            self._flush()

    def setdefault(self, path: str, kind: str) -> str:
        """The kind recorded for `path`, recording `kind` first when there is none."""
        found = self.get(path)
        if found is not None:
            return found[0]
        self.set(path, kind)
        return kind

    def close(self) -> None:
        """Drop the entries and remove the database (if any)."""
        self._dict = {}
        self._pending = {}
        self._bloom = bytearray()
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        self._db = None

    # -- disk ----------------------------------------------------------------------------

    def _hash(self, path: str) -> bytes:
        data = path.encode("utf-8", "surrogateescape")
        return hashlib.blake2b(data, key=self._key, digest_size=16).digest()

    def _failed(self, exc: Exception) -> PathTableError:
        where = self.spilled_to or Path(tempfile.gettempdir())
        return PathTableError(
            f"{where}: cannot keep the table of member paths on disk: {exc} "
            "(set TMPDIR to a folder with room)"
        )

    def _spill(self) -> None:
        try:
            self._spill_to_disk()
        except (OSError, sqlite3.Error) as exc:
            raise self._failed(exc) from exc

    def _spill_to_disk(self) -> None:
        folder = tempfile.mkdtemp(prefix="handover-paths-")  # mode 0700
        db = sqlite3.connect(os.path.join(folder, "paths.db"), isolation_level=None)
        self._finalizer = weakref.finalize(self, _remove, folder, db)
        for pragma in (
            "journal_mode=OFF",
            "synchronous=OFF",
            "cache_size=-8192",  # 8 MiB of page cache, whatever the table's size
            "temp_store=FILE",
        ):
            db.execute(f"PRAGMA {pragma}")
        db.execute("CREATE TABLE t (k BLOB PRIMARY KEY, kind INTEGER, digest BLOB) WITHOUT ROWID")
        self._db = db
        self.spilled_to = Path(folder)
        self._bloom = bytearray(BLOOM_BYTES)
        entries, self._dict = self._dict or {}, None
        for path, value in entries.items():
            key = self._hash(path)
            self._remember(key)
            self._pending[key] = (value, None) if isinstance(value, str) else value
            if len(self._pending) >= BATCH:
                self._flush()
        self._flush()

    # A Bloom filter in front of the database: most paths looked up are new, and a new path
    # then costs no query. Fixed size: past ~10 million paths it only says "maybe" more often.
    def _remember(self, key: bytes) -> None:
        bloom = self._bloom
        bits = len(bloom) << 3
        for i in range(0, 16, 4):
            bit = int.from_bytes(key[i : i + 4], "little") % bits
            bloom[bit >> 3] |= 1 << (bit & 7)

    def _maybe(self, key: bytes) -> bool:
        bloom = self._bloom
        bits = len(bloom) << 3
        for i in range(0, 16, 4):
            bit = int.from_bytes(key[i : i + 4], "little") % bits
            if not bloom[bit >> 3] & (1 << (bit & 7)):
                return False
        return True

    def _flush(self) -> None:
        if not self._pending or self._db is None:
            return
        rows = [
            (key, _CODE.get(kind, 0), bytes.fromhex(digest) if digest else None)
            for key, (kind, digest) in self._pending.items()
        ]
        try:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO t VALUES (?, ?, ?)", rows)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc
        self._pending = {}
