"""Prefect flows: one per contract phase, plus the whole lifecycle.

Importing the package tunes the process's malloc (`tune_malloc`) before the
flows' threads exist:

- it caps the arenas at two. glibc fixes its arena limit once a process has
  made 8 arenas, so a cap set when a bundle starts came after Prefect's own
  threads and the first exports had made theirs: measured on a 1 GiB exit of
  100,000 files, eight arenas kept 4-24 MiB each, mostly freed memory (peak
  RSS 322-338 MiB; 275-278 with the cap from the start, at the same CPU);
- it maps every block of 1 MiB or more on its own, so that an S3 range freed
  does not send every later block under its size into the arenas (the same
  exit: peak 259 MiB instead of 296, `fix_mmap_threshold`).
"""

from handover.bundle.buffers import tune_malloc

tune_malloc()
