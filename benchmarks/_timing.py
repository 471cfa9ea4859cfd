"""Time one command as the benchmarks do: wall clock, CPU of the whole pipeline, peak RSS."""

from __future__ import annotations

import os
import subprocess
import time


def run_timed(
    command: list[str] | str, *, shell: bool = False, env: dict[str, str] | None = None
) -> tuple[float, float, int]:
    """Run a command; return (wall seconds, CPU seconds, peak RSS KiB of the child).

    CPU seconds are user + system of the child and of the processes it
    waited for (tar, age, ssh, sha256sum), from wait4's rusage: a figure that
    stays meaningful when other work shares the machine. A failed command
    ends the benchmark with its stderr's tail: a figure of a failed run
    means nothing. `env` is added to this process's environment.
    """
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        shell=shell,
        executable="/bin/bash" if shell else None,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=None if env is None else {**os.environ, **env},
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    process.returncode = code
    if code != 0:
        raise SystemExit(f"failed ({code}): {command}\n{stderr[-2000:]}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss
