"""ZIP archives made by hand, for what zipfile will not write: an entry whose headers lie about its size."""

from __future__ import annotations

import struct
import zlib


def lying_zip(holds: int, declares: int, name: bytes = b"a.pfx") -> bytes:
    """One deflated entry of ``holds`` zero bytes whose headers say it has ``declares`` bytes."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    body, crc, chunk = bytearray(), 0, bytes(1 << 20)
    for start in range(0, holds, len(chunk)):
        part = chunk[: min(len(chunk), holds - start)]
        crc = zlib.crc32(part, crc)
        body += deflate.compress(part)
    body += deflate.flush()
    sizes = struct.pack("<III", crc, len(body), declares)
    local = (
        b"PK\x03\x04" + struct.pack("<HHHHH", 20, 0, 8, 0, 0x21) + sizes + struct.pack("<HH", len(name), 0)
    )
    central = (
        b"PK\x01\x02"
        + struct.pack("<HHHHHH", 20, 20, 0, 8, 0, 0x21)
        + sizes
        + struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0, 0)
        + name
    )
    offset = len(local) + len(name) + len(body)
    return (
        local
        + name
        + bytes(body)
        + central
        + b"PK\x05\x06"
        + struct.pack("<HHHHIIH", 0, 0, 1, 1, len(central), offset, 0)
    )
