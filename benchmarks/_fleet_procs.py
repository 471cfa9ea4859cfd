"""What benchmarks/fleet.py reads from /proc: process trees, peak memory, CPU time.

Linux only (the benchmark's sshd hosts are too). psutil is not a dependency
of the project, and /proc gives everything needed:

- `/proc/<pid>/stat`: parent pid, and utime, stime, cutime, cstime (the
  process's CPU and that of the children it has waited for, in clock ticks);
- `/proc/<pid>/status`: VmRSS (resident now) and VmHWM (its peak).

A worker's flow runs are its child processes; they live tens of seconds, so
sampling the tree every second sees each of them (peak RSS is VmHWM, a
high-water mark, so a sample late in a child's life still has its peak).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (None when gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rpartition(")")[2].split()


def cpu_seconds(pid: int, *, with_children: bool = True) -> float:
    """utime + stime (+ cutime + cstime: its waited-for children) of a live process, in s."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After ")": state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def parents() -> dict[int, int]:
    """pid -> parent pid of every process now."""
    out: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                out[int(entry)] = int(fields[1])
    return out


def tree(root: int, parent_of: dict[int, int]) -> list[int]:
    """`root` and all its descendants."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parent_of.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB; (0, 0) when it is gone."""
    rss = hwm = 0
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return rss, hwm


@dataclass
class TreeMemory:
    """Peak memory of one worker's process tree, from samples."""

    root: int
    worker_hwm_kib: int = 0  # the worker process itself
    child_hwm_kib: int = 0  # the largest flow-run child
    peak_sum_kib: int = 0  # the most the whole tree held at one sample
    children_seen: set[int] = field(default_factory=set)

    def sample(self, parent_of: dict[int, int]) -> None:
        total = 0
        for pid in tree(self.root, parent_of):
            rss, hwm = memory_kib(pid)
            total += rss
            if pid == self.root:
                self.worker_hwm_kib = max(self.worker_hwm_kib, hwm)
            else:
                self.children_seen.add(pid)
                self.child_hwm_kib = max(self.child_hwm_kib, hwm)
        self.peak_sum_kib = max(self.peak_sum_kib, total)


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of `values` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(share * len(ordered))))
    return ordered[rank - 1]
