"""The age file format (C2SP age v1) on `cryptography`: the public names.

Files written here open with Debian's `age -d -i KEY` or `rage`, and files
they write open here. See `stream.py` for the payload, `keys.py` for
recipients and identities, `armor.py` for ASCII armor.

    with AgeWriter(dst, [parse_recipient("age1...")]) as w:
        shutil.copyfileobj(src, w, 1 << 20)
    with AgeReader(src, load_identities(path)) as r:
        shutil.copyfileobj(r, dst, 1 << 20)
"""

from handover.bundle.age.armor import ArmoredReader
from handover.bundle.age.keys import (
    Identity,
    MLKEM768X25519Identity,
    MLKEM768X25519Recipient,
    Recipient,
    ScryptIdentity,
    ScryptRecipient,
    SshEd25519Identity,
    SshEd25519Recipient,
    SshRsaIdentity,
    SshRsaRecipient,
    Stanza,
    X25519Identity,
    X25519Recipient,
    load_identities,
    parse_identities,
    parse_identity,
    parse_recipient,
)
from handover.bundle.age.stream import CHUNK_SIZE, AgeReader, AgeWriter, ByteSink, ByteSource

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
    "load_identities",
    "parse_identities",
    "parse_identity",
    "parse_recipient",
]
