"""Open a restitution bundle: verified extraction into a folder (`handover open`).

`open_bundle` runs the same outer checks as `verify_bundle`, then reads the
index and every volume with the same parser, member policy and comparisons
(`reader.read_index`, `reader.read_volume`), this time with a `FolderWriter`
receiving each member's data as it is hashed. Everything lands in a private
staging folder beside the destination and is moved into place only when all
matched: a failed open leaves the destination as it was, and nothing is ever
written outside the staging folder, whatever names a bundle carries (the
policy refuses absolute names, `..`, devices, clashes, members under a file
or a link, hard links to anything but an earlier file and over-long names
before anything is created). Symbolic links are restored as links, last,
and never followed; those whose target is absolute or climbs out of the
volume's folder are listed in one note.

A staging folder left by a killed open holds decrypted client data: the
next open of the same destination removes it and says so.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from handover.bundle.age import Identity
from handover.bundle.manifest import MANIFEST_NAME, Manifest, load_manifest
from handover.bundle.manifest_stream import ManifestOutline
from handover.bundle.reader import (
    ReadProgress,
    as_source,
    check_outer,
    check_volume_listing,
    close_outline,
    read_index,
    read_volume,
)
from handover.bundle.readme import INDEX_FOLDER, volume_folder
from handover.bundle.sums import SUMS_NAME
from handover.bundle.tarparse import path_key, shown
from handover.bundle.types import BundleSource
from handover.bundle.writer import INDEX_NAME
from handover.errors import BundleCorrupt, BundleError, UsageError
from handover.state.diskspace import disk_full_from

__all__ = ["INDEX_FOLDER", "FolderWriter", "open_bundle", "open_bundle_outline", "staging_prefix"]

_STAGING_PID = re.compile(r"(\d+)-")  # after the prefix: the pid of the open that made it


class FolderWriter:
    """Writes the members a TarParser reads under `root`, which it creates and owns.

    Paths reach it only after the member policy accepted them (relative, no
    `..`, no clash, nothing under a file or a link), so joining them to
    `root` stays inside it. Symbolic links are only recorded while the
    volume is read and created by `finish`, after every file and folder:
    while data is written the folder holds no link at all, so no write can
    pass through one whatever the order of members. Files are still created
    with O_EXCL and O_NOFOLLOW, and links from folder descriptors opened
    with O_NOFOLLOW, so that a mistake fails instead of following anything.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self._prefix = f"{root}/"
        self._fd: int | None = None  # the file being written
        self._pending: tuple[int, float] | None = None  # its mode and mtime, set at its close
        self._folder = ""  # the folder of the last file: made already, no mkdir for its next
        self._symlinks: list[tuple[str, str]] = []
        self.outside: list[str] = []  # the first links whose target may lie outside the folder
        self.outside_count = 0  # all of them

    def _target(self, path: str) -> str:
        parts = [part for part in path.split("/") if part not in ("", ".")]
        if not parts or ".." in parts:  # the policy refused these already
            raise BundleCorrupt(f"{self.root.name}: member path {path!r} refused")
        return self._prefix + "/".join(parts)

    def directory(self, path: str) -> None:
        if path.strip("/.") == "":
            return
        os.makedirs(self._target(path), exist_ok=True)

    def open_file(self, path: str, mode: int, mtime: float) -> Callable[[Any], Any]:
        """Create the file; return what writes its data, straight to the descriptor.

        Why no buffered file object: the parser hands data in pieces of up to
        its buffer's size, and the files of a volume of many are mostly empty
        or small. A 1 MiB buffer made and freed per file, a `mkdir` of its
        folder and path objects cost 17 us of CPU per file: 100,000 empty
        files opened in 15.9 s (5.4 s of user CPU), 14.0 s (3.7 s) without;
        `tar -x` takes 9.4 s, nearly all of it the filesystem creating files.
        """
        target = self._target(path)
        folder = target.rpartition("/")[0]
        if folder != self._folder:
            os.makedirs(folder, exist_ok=True)
            self._folder = folder
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(target, flags, 0o600)
        self._fd = fd
        self._pending = (mode, mtime)
        return functools.partial(_write_all, fd)

    def close_file(self) -> None:
        fd, pending = self._fd, self._pending
        self._fd = self._pending = None
        if fd is None or pending is None:
            return
        mode, mtime = pending
        try:
            os.fchmod(fd, (mode & 0o755) | 0o600)  # on the descriptor: never through a link
            with contextlib.suppress(OverflowError, ValueError, OSError):  # a hostile mtime
                os.utime(fd, (mtime, mtime))
        finally:
            os.close(fd)

    def hardlink(self, path: str, target: str) -> None:
        """A hard link to a regular file written earlier (the policy checked it was one)."""
        source = self._target(target)
        link = self._target(path)
        os.makedirs(link.rpartition("/")[0], exist_ok=True)
        os.link(source, link, follow_symlinks=False)

    def symlink(self, path: str, target: str) -> None:
        """Record a symbolic link; `finish` creates it once every file is written."""
        self._target(path)
        self._symlinks.append((path, target))

    def finish(self) -> None:
        """Create the recorded symbolic links (after all data), each one never followed."""
        if not self._symlinks:
            return
        links = LinkMap({path_key(path): target for path, target in self._symlinks})
        root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            for path, target in self._symlinks:
                self._make_symlink(root_fd, path_key(path), target)
                if links.may_leave(path_key(path), target):
                    self.outside_count += 1
                    if len(self.outside) < OUTSIDE_SHOWN:
                        self.outside.append(path_key(path))
        finally:
            os.close(root_fd)
        self._symlinks = []

    def _make_symlink(self, root_fd: int, key: str, target: str) -> None:
        *folders, name = key.split("/")
        fd = os.dup(root_fd)
        try:
            for folder in folders:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(folder, 0o700, dir_fd=fd)
                flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
                inner = os.open(folder, flags, dir_fd=fd)
                os.close(fd)
                fd = inner
            os.symlink(target, name, dir_fd=fd)
            with contextlib.suppress(OverflowError, ValueError, OSError, NotImplementedError):
                os.utime(name, dir_fd=fd, follow_symlinks=False)  # the link itself, now
        finally:
            os.close(fd)

    def abort(self) -> None:
        """Close a file left open by a failed read (the staging folder goes anyway)."""
        fd, self._fd, self._pending = self._fd, None, None
        self._symlinks = []
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def _write_all(fd: int, data: Any) -> None:
    """Write all of `data` to `fd` (a regular file takes it in one call, short of a full disk)."""
    written = os.write(fd, data)
    if written < len(data):
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view) :]


MAX_RESOLVE_STEPS = 256  # components read resolving one link; beyond, it is said as leaving
_TARGET = "\0"  # key of a link's target in a LinkMap node (no name holds a NUL byte)


class LinkMap:
    """The symbolic links of one volume, as a tree of folders, to resolve targets on paper.

    `may_leave(path, target)` says whether the link `path` -> `target` may
    resolve outside the volume's folder, as the kernel would resolve it from
    inside: an absolute target, or one that climbs above the folder
    (`../../etc`), directly or through another link (`a -> .` then
    `b -> a/..`). Anything it cannot tell within MAX_RESOLVE_STEPS
    components (a loop, a very deep or long chain) counts as leaving. Used
    only to tell the user: links are never followed. A tree of nodes, not
    joined path strings, keeps each step constant time, so a hostile volume
    of many deep links costs at most MAX_RESOLVE_STEPS steps per link.
    """

    def __init__(self, links: Mapping[str, str]) -> None:
        self._root: dict[str, Any] = {}
        for path, target in links.items():
            node = self._root
            for part in path.split("/"):
                node = node.setdefault(part, {})
            node[_TARGET] = target

    def may_leave(self, path: str, target: str) -> bool:
        if target.startswith("/"):
            return True
        folders = path.split("/")[:-1]
        todo = target.split("/")[::-1]  # popped from the end: next component last
        if len(folders) + len(todo) > MAX_RESOLVE_STEPS:
            return True
        stack: list[dict[str, Any] | None] = [self._root]
        for folder in folders:
            here = stack[-1]
            stack.append(None if here is None else here.get(folder))
        steps = 0
        while todo:
            steps += 1
            if steps > MAX_RESOLVE_STEPS:
                return True
            part = todo.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if len(stack) == 1:
                    return True
                stack.pop()
                continue
            here = stack[-1]
            child = None if here is None else here.get(part)
            if child is not None and _TARGET in child:  # through another link of the volume
                through: str = child[_TARGET]
                if through.startswith("/"):
                    return True
                todo.extend(through.split("/")[::-1])
                if len(todo) > MAX_RESOLVE_STEPS:
                    return True
                continue
            stack.append(child)
        return False


OUTSIDE_SHOWN = 5  # links named in the note; the others are counted


def outside_links_note(
    outside: Sequence[str], count: int | None = None, shown_max: int = OUTSIDE_SHOWN
) -> str:
    """One line: how many links point (or may point) outside, and the first few names."""
    total = len(outside) if count is None else count
    names = ", ".join(shown(path) for path in outside[:shown_max])
    more = f" and {total - shown_max} more" if total > shown_max else ""
    return (
        f"{total} symbolic link(s) point outside the folder they were restored in "
        f"(absolute or climbing target): restored as links, never followed: {names}{more}"
    )


def staging_prefix(into: Path) -> str:
    """Name prefix of the staging folders of opens into `into` (beside it)."""
    return f".{into.name}.opening-"


def _clear_leftovers(into: Path, notes: list[str]) -> None:
    """Remove staging folders a killed open left beside `into`; note each one.

    A folder whose process still runs (its pid is in the name) is left and
    noted: another open of the same destination may be under way.
    """
    parent = into.parent
    if not parent.is_dir():
        return
    prefix = staging_prefix(into)
    for entry in sorted(parent.iterdir()):
        if not entry.name.startswith(prefix) or entry.is_symlink() or not entry.is_dir():
            continue
        if entry.stat().st_uid != os.getuid():  # in a shared folder: not ours to remove
            notes.append(f"{entry}: staging folder of another user: left")
            continue
        found = _STAGING_PID.match(entry.name[len(prefix) :])
        if found and int(found[1]) != os.getpid() and _alive(int(found[1])):
            notes.append(f"{entry}: staging folder of a running open (pid {found[1]}): left")
            continue
        shutil.rmtree(entry, ignore_errors=True)
        if entry.exists():
            notes.append(f"{entry}: staging folder of an interrupted open: could not remove it")
        else:
            notes.append(f"{entry}: removed the decrypted data an interrupted open left")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def open_bundle(
    source: BundleSource | Path | str,
    identities: Sequence[Identity],
    into: Path,
    signer: str | Path | None = None,
    *,
    notes: list[str] | None = None,
) -> Manifest:
    """`open_bundle_outline`, then the whole manifest read back from `into/index/`.

    For callers that need every member's record (the reversibility drill);
    the manifest is then held in memory, in proportion to the bundle.
    `handover open` uses `open_bundle_outline`, whose memory is bounded.
    """
    open_bundle_outline(source, identities, into, signer, notes=notes)
    path = Path(into).absolute() / INDEX_FOLDER / MANIFEST_NAME
    return load_manifest(path.read_bytes(), f"{INDEX_NAME}: {MANIFEST_NAME}")


def open_bundle_outline(
    source: BundleSource | Path | str,
    identities: Sequence[Identity],
    into: Path,
    signer: str | Path | None = None,
    *,
    notes: list[str] | None = None,
    progress: ReadProgress | None = None,
) -> ManifestOutline:
    """Verify and extract a bundle into `into` (absent or empty); return its manifest's outline.

    Each volume lands in `into/<NNNN-label>/`, the index in `into/index/`.
    Raises BundleCorrupt (one line per problem) or NoMatchingIdentity; then
    `into` is left as it was. Raises UsageError when `into` is not empty.
    `notes` (when given) receives lines for the user: the signer's
    fingerprint and whether it was checked, leftovers of an interrupted open.
    The outline (volumes, counts; no member list) keeps memory bounded.
    `progress` follows the decryption of the index and the volumes.
    """
    bundle = as_source(source)
    into = Path(into).absolute()
    said = notes if notes is not None else []
    try:
        if into.exists() and (not into.is_dir() or any(into.iterdir())):
            raise UsageError(f"{into}: must be an empty folder or not exist yet")
        _clear_leftovers(into, said)
    except OSError as exc:
        raise UsageError(f"{into}: cannot use this folder: {exc.strerror}") from exc
    outer = check_outer(bundle, signer, hash_encrypted=False)
    if outer.problems:
        raise BundleCorrupt("\n".join(outer.problems))
    if INDEX_NAME not in outer.sums:
        raise BundleCorrupt(f"{INDEX_NAME}: not listed in {SUMS_NAME}")
    said.append(signer_note(outer.signer_fingerprint, outer.signer_checked))
    try:
        into.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(
            tempfile.mkdtemp(prefix=f"{staging_prefix(into)}{os.getpid()}-", dir=into.parent)
        )
    except OSError as exc:
        raise UsageError(f"{into.parent}: cannot create a folder there: {exc.strerror}") from exc
    writer: FolderWriter | None = None
    manifest: ManifestOutline | None = None
    outside: list[str] = []  # the first few links pointing outside, for the note
    outside_count = 0
    try:
        writer = FolderWriter(staging / INDEX_FOLDER)
        manifest = read_index(bundle, identities, outer, writer, progress)
        writer.finish()
        problems = check_volume_listing(manifest, outer)
        if problems:
            raise BundleCorrupt("\n".join(problems))
        if progress is not None:
            progress.remaining(sum(volume.head.size for volume in manifest.volumes))
        for volume in manifest.volumes:
            writer = FolderWriter(staging / volume_folder(volume.file))
            expected = outer.sums[volume.file]
            problems = read_volume(bundle, manifest, volume, identities, expected, writer, progress)
            if problems:
                raise BundleCorrupt("\n".join(problems))
            writer.finish()
            outside_count += writer.outside_count
            outside += (f"{writer.root.name}/{path}" for path in writer.outside)
            del outside[OUTSIDE_SHOWN:]
        into.mkdir(exist_ok=True)
        for child in sorted(staging.iterdir()):
            os.replace(child, into / child.name)
    except OSError as exc:
        where = Path(exc.filename) if isinstance(exc.filename, str) else staging
        full = disk_full_from(exc, where, 0)
        if full is not None:
            raise full from exc
        raise BundleError(f"{where}: cannot write while opening: {exc.strerror}") from exc
    finally:
        if writer is not None:
            writer.abort()
        if manifest is not None:
            close_outline(manifest)
        shutil.rmtree(staging, ignore_errors=True)
    if outside_count:
        said.append(outside_links_note(outside, outside_count))
    assert manifest is not None  # read_index returned, or the open raised
    return manifest


def signer_note(fingerprint: str | None, checked: bool) -> str:
    """One line on who signed: checked against the reader's key, or only self-asserted."""
    if checked:
        return f"signed by {fingerprint}: matches the key given with --signer"
    return (
        f"signed by {fingerprint} (the bundle's own provider.pub): NOT checked against a key "
        "you trust; compare this fingerprint with the one your provider gave you out of band, "
        "or pass --signer FILE"
    )
