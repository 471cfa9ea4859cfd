"""bech32 (BIP 173), the text form of native age keys: `age1...` and `AGE-SECRET-KEY-1...`.

A codec of its own because X25519 and post-quantum keys both use it, and
unlike BIP 173 age puts no limit on the length (post-quantum keys are long).
"""

from __future__ import annotations

from collections.abc import Sequence

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_INDEX = {c: i for i, c in enumerate(_CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: Sequence[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ value
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _GENERATOR[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: Sequence[int], from_bits: int, to_bits: int, pad: bool) -> bytes:
    acc = 0
    bits = 0
    out = bytearray()
    max_value = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & max_value)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & max_value)
    elif bits >= from_bits or (acc << (to_bits - bits)) & max_value:
        raise ValueError("invalid bech32 padding")
    return bytes(out)


def bech32_encode(hrp: str, data: bytes) -> str:
    """Encode `data` under the lowercase human-readable part `hrp` (no length limit, as age)."""
    values = list(_convert_bits(data, 8, 5, pad=True))
    polymod = _polymod([*_hrp_expand(hrp), *values, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> (5 * (5 - i))) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[v] for v in values + checksum)


def bech32_decode(text: str) -> tuple[str, bytes]:
    """Return (hrp, data) in lowercase; raise ValueError naming what is wrong."""
    if text.lower() != text and text.upper() != text:
        raise ValueError("mixed case")
    lowered = text.lower()
    pos = lowered.rfind("1")
    if pos < 1 or pos + 7 > len(lowered):
        raise ValueError("missing separator or checksum")
    hrp = lowered[:pos]
    if any(ord(c) < 33 or ord(c) > 126 for c in hrp):
        raise ValueError("invalid character in prefix")
    try:
        values = [_INDEX[c] for c in lowered[pos + 1 :]]
    except KeyError as exc:
        raise ValueError(f"invalid character {exc.args[0]!r}") from exc
    if _polymod([*_hrp_expand(hrp), *values]) != 1:
        raise ValueError("bad checksum")
    return hrp, _convert_bits(values[:-6], 5, 8, pad=False)
