"""OpenSSH `sshd` processes on loopback, each standing for one host: the demo's and the tests'.

A host is `sshd -D -e -f CONFIG` on a free 127.0.0.1 port, unprivileged
when the user running it is not root: its own ed25519 host key, its own
`AuthorizedKeysFile` holding one throwaway user key, `StrictModes no`,
`UsePAM no`, `AllowUsers` the one account, `Subsystem sftp internal-sftp`.
Everything lives in the host's working folder; only a root sshd needs the
privilege-separation folder `/run/sshd`, created if missing.

`handover demo` reaches its sandbox hosts through these when the system has
sshd, as it would reach a client's machines; the test fixtures
(`tests/fixtures/sshd.py`) build on the same class. Starting and stopping
are here; what a host holds is the caller's business.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

__all__ = [
    "SSHD",
    "LoopbackSshd",
    "descendants",
    "fingerprint_of_public_line",
    "free_port",
    "keygen",
    "sshd_available",
]

SSHD = "/usr/sbin/sshd"
START_TIMEOUT_S = 10.0


def sshd_available() -> bool:
    """True when OpenSSH's server and ssh-keygen are installed (the demo then uses them)."""
    return (
        Path(SSHD).is_file() and os.access(SSHD, os.X_OK) and shutil.which("ssh-keygen") is not None
    )


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1 (a start retries on a clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fingerprint_of_public_line(line: str) -> str:
    """`SHA256:...` fingerprint of an OpenSSH public key line, as `ssh-keygen -l` prints it."""
    blob = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def keygen(path: Path, comment: str) -> str:
    """A new unencrypted ed25519 key at `path` (by ssh-keygen); its public line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_suffix(".pub").read_text().strip()


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, deepest first (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return list(reversed(found))


class LoopbackSshd:
    """One sshd process on loopback and its keys, under `workdir`.

    Keys already in `workdir` are kept (`reuse_keys`), so a host keeps its
    identity from one run to the next, as a real machine does: its pinned
    fingerprint stays true.
    """

    address = "127.0.0.1"

    def __init__(
        self,
        name: str,
        workdir: Path,
        *,
        user: str = "root",
        sftp_only: bool = False,
        password: str | None = None,
        reuse_keys: bool = False,
    ) -> None:
        self.name = name
        self.workdir = workdir
        self.user = user
        self.sftp_only = sftp_only
        self.password = password
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(workdir, 0o755)  # a non-root account reads its authorized_keys from here
        self.key_path = workdir / "user_ed25519"
        self.host_key_path = workdir / "host_ed25519"
        self.config_path = workdir / "sshd_config"
        self.log_path = workdir / "sshd.log"
        self.authorized_keys = workdir / "authorized_keys"
        public = self.key_path.with_suffix(".pub")
        if reuse_keys and self.key_path.is_file() and public.is_file():
            self.public_key_line = public.read_text().strip()
        else:
            for path in (self.key_path, public):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            self.public_key_line = keygen(self.key_path, f"handover-test-{name}")
        self.authorized_keys.write_text(self.public_key_line + "\n")
        os.chmod(self.authorized_keys, 0o644)
        host_public = self.host_key_path.with_suffix(".pub")
        if reuse_keys and self.host_key_path.is_file() and host_public.is_file():
            self.host_public_line = host_public.read_text().strip()
        else:
            self._new_host_key()

    # --- keys -----------------------------------------------------------------------------

    def _new_host_key(self) -> None:
        for path in (self.host_key_path, self.host_key_path.with_suffix(".pub")):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self.host_public_line = keygen(self.host_key_path, f"host-{self.name}")

    @property
    def host_key_fingerprint(self) -> str:
        return fingerprint_of_public_line(self.host_public_line)

    @property
    def known_hosts_line(self) -> str:
        key_type, blob = self.host_public_line.split()[:2]
        return f"[{self.address}]:{self.port} {key_type} {blob}"

    @property
    def credential_ref(self) -> str:
        return f"file:{self.key_path}"

    # --- process --------------------------------------------------------------------------

    def config_lines(self) -> list[str]:
        """The sshd_config of this host, one directive a line."""
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key_path}",
            f"PidFile {self.workdir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "StrictModes no",
            "UsePAM no",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            f"PasswordAuthentication {'yes' if self.password else 'no'}",
            "KbdInteractiveAuthentication no",
            f"AllowUsers {self.user}",
            "MaxStartups 64:30:128",
            "MaxSessions 64",
            "LogLevel INFO",
            "Subsystem sftp internal-sftp",
        ]
        if self.sftp_only:
            lines.append("ForceCommand internal-sftp")
        return lines

    def _write_config(self) -> None:
        self.config_path.write_text("\n".join(self.config_lines()) + "\n")

    def start(self, attempts: int = 5) -> None:
        """Start sshd on a free port (a new one on each clash), wait until it answers."""
        if self.process is not None and self.process.poll() is None:
            return
        if os.geteuid() == 0:  # privilege separation: only a root sshd needs it
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        keep_port = self.port
        for _ in range(attempts):
            self.port = keep_port or free_port()
            self._write_config()
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [SSHD, "-D", "-e", "-f", str(self.config_path)],
                    stdout=log,
                    stderr=log,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # a Ctrl-C at the terminal reaches the caller only
                )
            if self._wait_ready():
                return
            self.kill()
        raise RuntimeError(
            f"sshd for {self.name} did not start; see {self.log_path}:\n"
            + self.log_path.read_text()[-2000:]
        )

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with socket.create_connection((self.address, self.port), timeout=1) as sock:
                    if sock.recv(64).startswith(b"SSH-2.0"):
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Stop sshd (SIGTERM, then SIGKILL). Sessions it already forked die with their TCP peer."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def kill(self) -> None:
        """SIGKILL the listening sshd and every session process it forked (a crash)."""
        if self.process is None:
            return
        pid = self.process.pid
        for child in descendants(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, 9)
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(timeout=5)
        self.process = None

    def restart(self, *, new_host_key: bool = False) -> None:
        """Stop and start again on the same port, optionally with a fresh host key."""
        self.stop()
        if new_host_key:
            self._new_host_key()
        self.start()
