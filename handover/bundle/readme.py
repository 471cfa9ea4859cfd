"""README.txt of a bundle: how a client verifies and opens it with standard tools only.

It names no client file: only the bundle's own files (volume names carry
host and dataset labels, which the outer listing shows anyway). Every
command line starts with `    $ ` so that tests can run exactly what the
client reads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

NAMESPACE = "handover-bundle"
SIGNER_IDENTITY = "provider"
COMMAND_PREFIX = "    $ "
KEY_PLACEHOLDER = "key.txt"
INDEX_FOLDER = "index"  # where `handover open` puts the index, beside the volume folders
# What the writer names volumes (`volumes/0001-web01-www.tar.age`); a reader accepts no other.
_VOLUME_FILE = re.compile(r"volumes/[0-9]+-[A-Za-z0-9_][A-Za-z0-9._-]{0,120}\.tar\.age")


def volume_folder(volume_file: str) -> str:
    """Where a volume is unpacked: `volumes/0001-web01-www.tar.age` -> `0001-web01-www`.

    Raises ValueError for a name the writer never produces (`volumes/...tar.age`
    would give `..`): readers check `volume_file_problem` first.
    """
    if volume_file_problem(volume_file) is not None:
        raise ValueError(f"not a volume file name: {volume_file!r}")
    name = volume_file.rsplit("/", 1)[-1]
    return name.removesuffix(".tar.age")


def volume_file_problem(volume_file: str) -> str | None:
    """Why a manifest's volume `file` is not one a reader may use, or None.

    The name decides a folder `handover open` creates: only the names the
    writer gives (number, dash, label of letters, digits, `.`, `_`, `-`) pass.
    """
    if not _VOLUME_FILE.fullmatch(volume_file):
        return "is not named volumes/NNNN-<label>.tar.age: refused"
    return None


def render_readme(
    volume_files: Sequence[str], created: str, provider_fingerprint: str, title: str = ""
) -> str:
    """The README.txt text; `volume_files` are bundle-relative paths."""
    lines = [
        *_introduction(created, title),
        *_contents(volume_files),
        *_check_download(),
        *_check_signature(provider_fingerprint),
        *_unpack_volumes(volume_files),
        *_unpack_index(),
    ]
    return "\n".join(lines)


def _introduction(created: str, title: str) -> list[str]:
    heading = "Restitution bundle" + (f": {title}" if title else "")
    return [
        heading,
        "=" * len(heading),
        "",
        f"Sealed on {created} by handover.",
        "",
        "This folder holds your data, encrypted with the age format",
        "(https://age-encryption.org) to the key(s) you gave your provider, and signed",
        "by your provider. You need only standard tools to check and open it:",
        "age (or rage), GNU tar, sha256sum and ssh-keygen (OpenSSH). On Debian or Ubuntu:",
        "",
        "    apt-get install age tar coreutils openssh-client",
        "",
    ]


def _contents(volume_files: Sequence[str]) -> list[str]:
    """The list of the bundle's files, then where to run the commands from."""
    return [
        "Contents",
        "--------",
        "",
        "  README.txt      this file (plain text)",
        "  SHA256SUMS      SHA-256 of every other file, for sha256sum -c",
        "  SHA256SUMS.sig  the provider's SSH signature of SHA256SUMS",
        "  provider.pub    the provider's signing public key",
        "  index.tar.age   encrypted: MANIFEST.json (every file of every volume with its",
        "                  size and SHA-256), and the documents of the handover",
        f"  volumes/        {len(volume_files)} encrypted volume(s), one per dataset:",
        *(f"                    {name}" for name in volume_files),
        "",
        "Run the commands below from inside this folder, in a POSIX shell (bash, zsh).",
        f"In them, {KEY_PLACEHOLDER} stands for your age identity file (AGE-SECRET-KEY-1...);",
        "if you gave an SSH public key as recipient, use your SSH private key instead,",
        "for example ~/.ssh/id_ed25519.",
        "",
    ]


def _check_download() -> list[str]:
    return [
        "1. Check that the download is complete and intact",
        "",
        "Every line must end with OK:",
        "",
        f"{COMMAND_PREFIX}sha256sum -c SHA256SUMS",
        "",
    ]


def _check_signature(provider_fingerprint: str) -> list[str]:
    """Step 2: the client compares the fingerprint out of band, then checks the signature."""
    return [
        "2. Check that the bundle comes from your provider",
        "",
        f"First compare the key in provider.pub (fingerprint {provider_fingerprint})",
        "with the fingerprint your provider gave you by another channel (contract annex,",
        "e-mail, phone). Do not trust the fingerprint written here or the one handover",
        "prints: anyone who altered this bundle can change this file and provider.pub",
        "too. Print the fingerprint of provider.pub yourself and compare:",
        "",
        f"{COMMAND_PREFIX}ssh-keygen -lf provider.pub",
        "",
        "The signature only proves something if that key is the right one.",
        "Then build an allowed_signers file from it and check the signature:",
        "",
        f'{COMMAND_PREFIX}echo "{SIGNER_IDENTITY} $(cat provider.pub)" > allowed_signers',
        f"{COMMAND_PREFIX}ssh-keygen -Y verify -f allowed_signers -I {SIGNER_IDENTITY} "
        f"-n {NAMESPACE} -s SHA256SUMS.sig < SHA256SUMS",
        "",
        f'It must print: Good "{NAMESPACE}" signature for {SIGNER_IDENTITY} with ... key.',
        "Since SHA256SUMS covers every other file, steps 1 and 2 together prove that",
        "each file is exactly what the provider sealed.",
        "",
    ]


def _unpack_volumes(volume_files: Sequence[str]) -> list[str]:
    """Step 3: three commands per volume (make its folder, decrypt and unpack, check)."""
    lines = [
        "3. Decrypt and unpack each volume",
        "",
        "Each volume unpacks into its own folder under restored/. Inside it, a",
        "SHA256SUMS file lists every file of the volume; sha256sum -c must print OK for",
        "each. (If age reports an error, the volume is damaged: do not use what tar",
        "unpacked from it.)",
        "",
    ]
    for name in volume_files:
        folder = f"restored/{volume_folder(name)}"
        lines += [
            f"{COMMAND_PREFIX}mkdir -p {folder}",
            f"{COMMAND_PREFIX}age -d -i {KEY_PLACEHOLDER} {name} | tar -x -C {folder}",
            f"{COMMAND_PREFIX}(cd {folder} && sha256sum -c --quiet SHA256SUMS && echo OK)",
            "",
        ]
    return lines


def _unpack_index() -> list[str]:
    """Step 4, then what the manifest holds and what handover itself would do."""
    return [
        "4. Decrypt the index",
        "",
        f"{COMMAND_PREFIX}mkdir -p restored/index",
        f"{COMMAND_PREFIX}age -d -i {KEY_PLACEHOLDER} index.tar.age | tar -x -C restored/index",
        f"{COMMAND_PREFIX}(cd restored/index && sha256sum -c --quiet SHA256SUMS && echo OK)",
        "",
        "restored/index/MANIFEST.json lists every volume and every file in it, with",
        "size, SHA-256, permissions and modification time, and where it came from.",
        "",
        "Symbolic links are kept as they were on the source system; check where they",
        "point before following them. If you have handover installed, `handover verify",
        "--identity KEY --signer provider-key.pub .` checks all of the above without",
        "writing plaintext to disk, against the provider key you received out of band",
        "(without --signer it prints the signer's fingerprint for you to compare), and",
        "`handover open` unpacks everything (it refuses links and device files).",
        "",
    ]
