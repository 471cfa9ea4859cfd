"""`handover keygen | seal | verify | open`: restitution bundles from the command line.

A client needs none of this (README.txt in each bundle says how to use
`age`, `tar`, `sha256sum` and `ssh-keygen`); these commands are for the
provider who seals, and for a client who prefers one command that checks
everything and never writes plaintext of a damaged volume.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from handover.cli import (
    app,
    console,
    err_console,
    handles_errors,
    rich_console,
    stderr_is_terminal,
)
from handover.errors import KeyFormatError, UsageError
from handover.sizes import size_text
from handover.state.atomic import atomic_writer

if TYPE_CHECKING:  # the bundle modules are imported inside commands: `handover --help` stays quick
    from rich.progress import Progress, TaskID

    from handover.bundle.age import Identity, Recipient
    from handover.bundle.types import BundleSource, BundleTarget, VolumeSource


def _write_new(path: Path, data: bytes, mode: int) -> None:
    if path.exists():
        raise UsageError(f"{path}: already exists; refusing to overwrite a key")
    with atomic_writer(path, mode=mode) as handle:
        handle.write(data)


@app.command()
@handles_errors
def keygen(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="File to write (mode 0600).")
    ] = None,
    signing: Annotated[
        bool, typer.Option("--signing", help="An OpenSSH Ed25519 signing key (and FILE.pub).")
    ] = False,
) -> None:
    """Create an age identity (prints its recipient) or the provider's signing key."""
    if signing:
        from handover.bundle.sshsig import SigningKey

        if out is None:
            raise UsageError("--signing needs --out FILE (the private key is written there)")
        key = SigningKey.generate()
        public = Path(f"{out}.pub")
        if public.exists():
            raise UsageError(f"{public}: already exists; refusing to overwrite a key")
        _write_new(out, key.private_openssh(), 0o600)
        _write_new(public, (key.public_line("provider") + "\n").encode(), 0o644)
        console.print(key.public_line("provider"), soft_wrap=True)
        err_console.print(
            f"Signing key written to {out} (public key {public}, {key.fingerprint()})"
        )
        return
    from handover.bundle.age import X25519Identity

    identity = X25519Identity.generate()
    recipient = str(identity.recipient())
    created = datetime.now(UTC).replace(microsecond=0).isoformat()
    text = f"# created: {created}\n# public key: {recipient}\n{identity}\n"
    if out is None:
        sys.stdout.write(text)
        err_console.print(f"Public key: {recipient}")
        return
    _write_new(out, text.encode("ascii"), 0o600)
    console.print(recipient, soft_wrap=True)


# -- seal ------------------------------------------------------------------------------------


def _recipients(to: Sequence[str], to_files: Sequence[Path]) -> list[Recipient]:
    from handover.bundle.age import parse_recipient

    lines: list[tuple[str, str]] = [("--to", text) for text in to]
    for path in to_files:
        try:
            content = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{path}: cannot read recipients file: {exc.strerror}") from exc
        for number, line in enumerate(content.splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                lines.append((f"{path}:{number}", line.strip()))
    if not lines:
        raise UsageError("no recipient: give --to RECIPIENT or --to-file FILE")
    recipients = []
    for where, text in lines:
        try:
            recipients.append(parse_recipient(text))
        except KeyFormatError as exc:
            raise KeyFormatError(f"{where}: {exc}") from exc
    return recipients


def _warn_client_requirements(recipients: Sequence[Recipient]) -> None:
    """Say which recipients need a newer `age` than a client may have (sealing goes on)."""
    from handover.bundle.age import client_requirements

    for warning in client_requirements(recipients):
        from rich.markup import escape  # here: rich costs ~25 ms of a seal's start

        err_console.print(
            f"[yellow]warning:[/yellow] {escape(warning)}",
            markup=True,
            soft_wrap=True,
            highlight=False,
        )


def _identities(paths: Sequence[Path]) -> list[Identity]:
    from handover.bundle.age import load_identities

    identities: list[Identity] = []
    for path in paths:
        if not path.is_file():
            raise UsageError(f"{path}: no such identity file")
        identities.extend(load_identities(path))
    return identities


def _label_base(source: str) -> str:
    from handover.bundle.labels import slugify

    if source.startswith("ssh://"):
        import urllib.parse

        parts = urllib.parse.urlsplit(source)
        base = os.path.basename(urllib.parse.unquote(parts.path).rstrip("/")) or "root"
        return slugify(f"{parts.hostname or 'host'}-{base}")
    if source.startswith("s3://"):
        bucket, _, prefix = source[5:].partition("/")
        base = os.path.basename(prefix.rstrip("/"))
        return slugify(f"{bucket}-{base}" if base else bucket)
    path = Path(os.path.abspath(source))
    return slugify(path.name or "root")


def unique_labels(sources: Sequence[str]) -> list[str]:
    """One label per source (basename, or host/bucket + basename), made unique with -2, -3."""
    labels: list[str] = []
    seen: set[str] = set()
    for source in sources:
        base = _label_base(source)
        label, n = base, 2
        while label in seen:
            label, n = f"{base}-{n}", n + 1
        seen.add(label)
        labels.append(label)
    return labels


def _volume_source(
    source: str, label: str, known_hosts: Path | None, ssh_key: Path | None
) -> VolumeSource:
    if source.startswith("ssh://"):
        from handover.connectors.ssh.url import ssh_source_from_url

        return ssh_source_from_url(source, known_hosts, ssh_key, label)
    if source.startswith("s3://"):
        from handover.connectors.s3 import s3_source_from_url

        return s3_source_from_url(source, label)
    if "://" in source:
        raise UsageError(f"{source}: unknown source kind (a path, ssh://... or s3://...)")
    from handover.bundle.local import local_path_source

    return local_path_source(label, Path(source))


def _start_ssh(
    stack: ExitStack, sources: Sequence[str], volume_sources: Sequence[VolumeSource], jobs: int
) -> None:
    """Start `ssh` for the ssh:// sources among the first `jobs` (those sealed at once).

    Their connection and login then overlap the import and setup of the
    bundle writer (issue 16); `stack` stops an `ssh` the writer never read.
    """
    if not any(source.startswith("ssh://") for source in sources[:jobs]):
        return
    from handover.connectors.ssh.url import SSHUrlSource

    for volume in volume_sources[:jobs]:
        if isinstance(volume, SSHUrlSource):
            stack.callback(volume.stop)
            volume.start()


def _bundle_target(out: str) -> tuple[BundleTarget, Path | None]:
    """The target, and the local folder to remove if sealing fails (when we created it)."""
    if out.startswith("s3://"):
        from handover.connectors.s3 import s3_target_from_url

        return s3_target_from_url(out), None
    from handover.bundle.local import DirectoryTarget

    path = Path(out)
    created: Path | None = None
    if path.exists():
        if not path.is_dir() or any(path.iterdir()):
            raise UsageError(f"{path}: --out must be an empty folder or not exist yet")
    else:
        path.mkdir(parents=True)
        created = path
    return DirectoryTarget(path), created


def _bundle_source(bundle: str) -> BundleSource:
    if bundle.startswith("s3://"):
        from handover.connectors.s3 import s3_bundle_source_from_url

        return s3_bundle_source_from_url(bundle)
    from handover.bundle.local import DirectorySource

    return DirectorySource(Path(bundle))


@contextmanager
def _rich_bar(description: str, *, total_later: bool) -> Iterator[tuple[Progress, TaskID]]:
    """A transient byte counter on stderr: bytes, speed, time taken; with `total_later`, a
    bar and the time left, shown once the task is given its total."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns: list[ProgressColumn] = [SpinnerColumn(), TextColumn("{task.description}")]
    if total_later:
        columns.append(BarColumn())
    columns += [DownloadColumn(), TransferSpeedColumn(), TimeElapsedColumn()]
    if total_later:
        columns.append(TimeRemainingColumn())
    with Progress(*columns, console=rich_console(err_console), transient=True) as bar:
        yield bar, bar.add_task(description, total=None)


@contextmanager
def _progress(enabled: bool, description: str) -> Iterator[Callable[[int], None] | None]:
    """A thread-safe byte counter shown with rich on a terminal; nothing otherwise."""
    if not enabled:
        yield None
        return
    lock = threading.Lock()
    with _rich_bar(description, total_later=False) as (bar, task):

        def advance(count: int) -> None:
            with lock:
                bar.update(task, advance=count)

        yield advance


class _ReadBar:
    """What verify and open report their reading to (`ReadProgress`), shown with rich."""

    def __init__(self, bar: Progress, task: TaskID) -> None:
        self._bar = bar
        self._task = task
        self._lock = threading.Lock()
        self._done = 0

    def advance(self, count: int) -> None:
        with self._lock:
            self._done += count
            self._bar.update(self._task, advance=count)

    def remaining(self, count: int) -> None:
        with self._lock:
            self._bar.update(self._task, total=self._done + count)


@contextmanager
def _read_progress(enabled: bool, description: str) -> Iterator[_ReadBar | None]:
    """A bar for the decryption of a bundle on a terminal (time left once the manifest is
    read); nothing otherwise."""
    if not enabled:
        yield None
        return
    with _rich_bar(description, total_later=True) as (bar, task):
        yield _ReadBar(bar, task)


@app.command()
@handles_errors
def seal(
    sources: Annotated[
        list[str], typer.Argument(help="Folders or files (or ssh://USER@HOST/PATH, s3://B/P).")
    ],
    sign_key: Annotated[Path, typer.Option("--sign-key", help="Provider's OpenSSH Ed25519 key.")],
    out: Annotated[str, typer.Option("--out", help="Bundle folder (or s3://bucket/prefix).")],
    to: Annotated[
        list[str] | None, typer.Option("--to", help="age or SSH recipient (repeatable).")
    ] = None,
    to_file: Annotated[
        list[Path] | None, typer.Option("--to-file", help="Recipients file, one per line.")
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Volumes sealed at once.")] = 2,
    known_hosts: Annotated[
        Path | None, typer.Option("--known-hosts", help="known_hosts for ssh:// sources.")
    ] = None,
    ssh_key: Annotated[
        Path | None, typer.Option("--ssh-key", help="Private key for ssh:// sources.")
    ] = None,
    title: Annotated[str, typer.Option("--title", help="Title shown in README.txt.")] = "",
) -> None:
    """Seal SOURCE... into an encrypted, signed bundle (one volume per SOURCE)."""
    from handover.bundle.sshsig import SigningKey

    recipients = _recipients(to or [], to_file or [])
    _warn_client_requirements(recipients)
    key = SigningKey.load(sign_key)
    labels = unique_labels(sources)
    volume_sources = [
        _volume_source(source, label, known_hosts, ssh_key)
        for source, label in zip(sources, labels, strict=True)
    ]
    target, created = _bundle_target(out)
    started = time.monotonic()
    try:
        with ExitStack() as early:
            _start_ssh(early, sources, volume_sources, jobs)
            from handover.bundle.writer import BundleWriter  # while `ssh` connects

            with _progress(stderr_is_terminal(), "sealing") as progress:
                writer = BundleWriter(target, recipients, key, progress=progress, title=title)
                with ThreadPoolExecutor(max_workers=min(jobs, len(volume_sources))) as pool:
                    futures = [
                        pool.submit(writer.add_volume, source, number=number)
                        for number, source in enumerate(volume_sources, 1)
                    ]
                    records = [future.result() for future in futures]
                result = writer.finish()
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
    elapsed = time.monotonic() - started
    data = sum(record.data_size for record in records)
    files = sum(record.file_count for record in records)
    # Plain text, not rich: a path is never read as markup, and rich is not imported just
    # for this line (~25 ms at the end of every seal).
    typer.echo(
        f"Sealed {len(records)} volume(s), {files} files, {size_text(data)} in {elapsed:.1f} s "
        f"({size_text(data / max(elapsed, 1e-9))}/s) -> {result.location}"
    )


@app.command()
@handles_errors
def verify(
    bundle: Annotated[str, typer.Argument(help="Bundle folder (or s3://bucket/prefix).")],
    identity: Annotated[
        list[Path] | None,
        typer.Option("--identity", "-i", help="Decrypt and check every member too."),
    ] = None,
    signer: Annotated[
        Path | None, typer.Option("--signer", help="Provider's public key file to trust.")
    ] = None,
) -> None:
    """Check a bundle; exit 0 if all is good, else one line per problem and exit 1.

    Without --signer the signature is checked with the bundle's own
    provider.pub, which anyone altering the bundle can replace: the signer's
    fingerprint is printed for the client to compare with the one received
    out of band. With --signer, a bundle signed by another key fails.
    """
    from rich.markup import escape

    from handover.bundle.extract import signer_note
    from handover.bundle.reader import verify_bundle_outcome

    identities = _identities(identity or [])
    source = _bundle_source(bundle)
    if signer is not None and not signer.is_file():
        raise UsageError(f"{signer}: no such signer key file")
    with _read_progress(stderr_is_terminal(), "verifying") as progress:
        outcome = verify_bundle_outcome(source, identities or None, signer, progress=progress)
    if outcome.problems:
        for line in outcome.problems:
            err_console.print(
                f"[red]error:[/red] {escape(line)}", markup=True, soft_wrap=True, highlight=False
            )
        raise typer.Exit(1)
    checked = (
        "every volume decrypted and every member checked"
        if identities
        else ("outer checksums and signature (add --identity to check the contents)")
    )
    console.print(f"OK: {source.describe()}: {checked}", soft_wrap=True, markup=False)
    note = signer_note(outcome.signer_fingerprint, outcome.signer_checked)
    console.print(note, soft_wrap=True, markup=False)


@app.command("open")
@handles_errors
def open_command(
    bundle: Annotated[str, typer.Argument(help="Bundle folder (or s3://bucket/prefix).")],
    identity: Annotated[
        list[Path], typer.Option("--identity", "-i", help="age identity or SSH private key.")
    ],
    into: Annotated[Path, typer.Option("--into", help="Empty or new folder to extract into.")],
    signer: Annotated[
        Path | None, typer.Option("--signer", help="Provider's public key file to trust.")
    ] = None,
) -> None:
    """Verify and extract a bundle; nothing is left in --into unless everything checks out."""
    from handover.bundle.extract import open_bundle_outline

    identities = _identities(identity)
    if not identities:
        raise UsageError("--identity FILE is required to open a bundle")
    if signer is not None and not signer.is_file():
        raise UsageError(f"{signer}: no such signer key file")
    notes: list[str] = []
    try:
        with _read_progress(stderr_is_terminal(), "opening") as progress:
            manifest = open_bundle_outline(
                _bundle_source(bundle), identities, into, signer, notes=notes, progress=progress
            )
    finally:  # leftovers of an interrupted open are said even when this one fails
        for line in notes:
            if not line.startswith("signed by"):
                err_console.print(f"note: {line}", soft_wrap=True, markup=False)
    files = sum(v.file_count for v in manifest.volumes)
    console.print(
        f"Opened {len(manifest.volumes)} volume(s), {files} files verified -> {into}",
        soft_wrap=True,
        markup=False,
    )
    for line in notes:
        if line.startswith("signed by"):
            console.print(line, soft_wrap=True, markup=False)


__all__ = ["keygen", "open_command", "seal", "unique_labels", "verify"]
