"""The header stanza and the two roles around it: a Recipient writes, an Identity reads.

Every recipient type (X25519, SSH, scrypt, post-quantum) implements these
ABCs in a module of its own; the header and the payload writer and reader
only ever see the ABCs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar


@dataclass
class Stanza:
    """One recipient stanza of an age header: `-> type args...` then a base64 body."""

    type: str
    args: list[str] = field(default_factory=list)
    body: bytes = b""


class Recipient(ABC):
    """Something a file key can be wrapped to. `str()` gives the canonical text back."""

    # The oldest `age` release that decrypts a file wrapped to this recipient type:
    # age 1.0.0 already had X25519, SSH and scrypt recipients.
    min_age_version: ClassVar[tuple[int, int, int]] = (1, 0, 0)

    @abstractmethod
    def wrap(self, file_key: bytes) -> list[Stanza]:
        """Return the stanzas that carry `file_key` for this recipient."""

    @abstractmethod
    def __str__(self) -> str: ...

    @property
    def key_text(self) -> str:
        """The recipient without any comment: what equality compares."""
        return str(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, Recipient)
            and (other.key_text == self.key_text)
        )

    def __hash__(self) -> int:
        return hash(self.key_text)


class Identity(ABC):
    """Something that may unwrap a file key from a header's stanzas."""

    @abstractmethod
    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        """Return the file key, or None if no stanza is for this identity.

        Raises AgeFormatError(kind="header") for a malformed stanza of a type it
        handles, even one not addressed to it: the reference implementation does
        the same, and the shared test vectors expect it.
        """

    def __repr__(self) -> str:
        # Never show key material, even in a traceback.
        return f"<{type(self).__name__}>"
