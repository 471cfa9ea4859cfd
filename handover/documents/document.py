"""The generated document: its file stem, its title, and the same content as Markdown and HTML.

This is what the flows hold and write into a phase's folder (and what goes
into the bundle); it knows nothing of the blocks it was rendered from.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from handover.state.atomic import write_atomic


class Document(BaseModel):
    """A generated document: `name` is the file stem (`baseline-report`), same content twice."""

    model_config = ConfigDict(frozen=True)

    name: str
    title: str
    markdown: str
    html: str

    def write(self, folder: Path) -> list[Path]:
        """Write `<name>.md` and `<name>.html` atomically under `folder`; return both paths."""
        paths = [folder / f"{self.name}.md", folder / f"{self.name}.html"]
        write_atomic(paths[0], self.markdown.encode("utf-8"))
        write_atomic(paths[1], self.html.encode("utf-8"))
        return paths
