"""Prefect flows: one per contract phase, plus the whole lifecycle.

Importing the package caps the process's malloc arenas (`limit_arenas`)
before the flows' threads exist. glibc fixes its arena limit once a process
has made 8 arenas, so the cap set when a bundle starts came after Prefect's
own threads and the first exports had made theirs: measured on a 1 GiB exit
of 100,000 files, eight arenas kept 4-24 MiB each, mostly freed memory
(peak RSS 322-338 MiB; 275-278 with the cap from the start, at the same CPU).
"""

from handover.bundle.buffers import limit_arenas

limit_arenas()
