"""The age file format (C2SP age v1) on `cryptography`: the public names.

Files written here open with Debian's `age -d -i KEY` or `rage`, and files
they write open here. One module per concern, as in the reference
implementation: `writer.py` and `reader.py` for the payload (`stream.py` the
STREAM construction they share, `header.py` the header), one module per
recipient type (`x25519.py`, `ssh.py`, `scrypt.py`, `mlkem.py`) on the
shared `stanza.py` and `primitives.py`, `parse.py` to read keys from text,
`armor.py` for ASCII armor, `compat.py` for the age release a client needs.
Import from here; the modules of this package import each other directly.

    with AgeWriter(dst, [parse_recipient("age1...")]) as w:
        shutil.copyfileobj(src, w, 1 << 20)
    with AgeReader(src, load_identities(path)) as r:
        shutil.copyfileobj(r, dst, 1 << 20)
"""

from handover.bundle.age.armor import ArmoredReader
from handover.bundle.age.compat import client_requirements, recipients_problem
from handover.bundle.age.mlkem import MLKEM768X25519Identity, MLKEM768X25519Recipient
from handover.bundle.age.parse import (
    load_identities,
    parse_identities,
    parse_identity,
    parse_recipient,
)
from handover.bundle.age.reader import AgeReader
from handover.bundle.age.scrypt import ScryptIdentity, ScryptRecipient
from handover.bundle.age.ssh import (
    SshEd25519Identity,
    SshEd25519Recipient,
    SshRsaIdentity,
    SshRsaRecipient,
)
from handover.bundle.age.stanza import Identity, Recipient, Stanza
from handover.bundle.age.stream import CHUNK_SIZE, ByteSink, ByteSource
from handover.bundle.age.writer import AgeWriter
from handover.bundle.age.x25519 import X25519Identity, X25519Recipient

__all__ = [
    "CHUNK_SIZE",
    "AgeReader",
    "AgeWriter",
    "ArmoredReader",
    "ByteSink",
    "ByteSource",
    "Identity",
    "MLKEM768X25519Identity",
    "MLKEM768X25519Recipient",
    "Recipient",
    "ScryptIdentity",
    "ScryptRecipient",
    "SshEd25519Identity",
    "SshEd25519Recipient",
    "SshRsaIdentity",
    "SshRsaRecipient",
    "Stanza",
    "X25519Identity",
    "X25519Recipient",
    "client_requirements",
    "load_identities",
    "parse_identities",
    "parse_identity",
    "parse_recipient",
    "recipients_problem",
]
