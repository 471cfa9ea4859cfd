"""Volume labels: the part of a volume's file name that names its source.

Its own module, with nothing heavy to import: `handover seal` works out the
labels before it starts `ssh`, and imports the writer while `ssh` connects.
"""

from __future__ import annotations

import re

_NOT_IN_LABEL = re.compile(r"[^A-Za-z0-9._-]+")


def slugify(text: str, fallback: str = "data") -> str:
    """A file-name-safe label: letters, digits, dot, dash, underscore."""
    slug = _NOT_IN_LABEL.sub("-", text).strip("-.")
    return slug[:80] or fallback
