"""Byte counts as people read them, the same way in documents, checks and the CLI."""

from __future__ import annotations

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def size_text(n: float) -> str:
    """`512 bytes`, `1.5 KiB`, ... `3.2 PiB`: binary units, one decimal."""
    if n < 1024:
        return f"{n:.0f} bytes"
    value = float(n)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            break
    return f"{value:.1f} {unit}"
