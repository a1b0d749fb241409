"""Draw the add-on's icon.png (128x128) and logo.png (250x100): a meter dial with a coin slot.

Pure Python (zlib + struct), so the images can be regenerated anywhere:
    scripts/run python scripts/lib/addon_images.py
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

ADDON = Path(__file__).resolve().parents[2] / "addon"
BLUE = (3, 169, 244, 255)
WHITE = (255, 255, 255, 255)
GOLD = (255, 193, 7, 255)
DARK = (33, 33, 33, 255)
CLEAR = (0, 0, 0, 0)
Pixel = tuple[int, int, int, int]


def png(width: int, height: int, pixel: list[list[Pixel]]) -> bytes:
    """Encode RGBA rows as a PNG file."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\0" + b"".join(bytes(p) for p in row) for row in pixel)
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def meter(size: int, x: float, y: float) -> Pixel | None:
    """Colour a pixel of the mark: blue rounded tile, white dial, needle, gold coin."""
    c = size / 2
    dx, dy = x - c, y - c
    r = math.hypot(dx, dy)
    corner = size * 0.18
    qx, qy = max(abs(dx) - (c - corner), 0), max(abs(dy) - (c - corner), 0)
    if math.hypot(qx, qy) > corner:
        return None
    coin = math.hypot(x - size * 0.72, y - size * 0.72)
    if coin < size * 0.16:
        return DARK if abs(x - size * 0.72) < size * 0.02 and coin < size * 0.1 else GOLD
    if r < size * 0.34 and dy < size * 0.08:
        angle = math.atan2(-dy, dx)
        on_needle = abs(angle - math.radians(55)) < 0.09 and r < size * 0.3
        return DARK if on_needle or r < size * 0.04 else WHITE
    return BLUE


def draw(width: int, height: int, mark_size: int) -> bytes:
    """Render the mark, MARK_SIZE square, at the left of a transparent WIDTH x HEIGHT PNG."""
    rows = []
    for y in range(height):
        row = []
        for x in range(width):
            pixel = meter(mark_size, x + 0.5, y + 0.5 - (height - mark_size) / 2)
            row.append(pixel if pixel is not None and x < mark_size else CLEAR)
        rows.append(row)
    return png(width, height, rows)


if __name__ == "__main__":
    (ADDON / "icon.png").write_bytes(draw(128, 128, 128))
    (ADDON / "logo.png").write_bytes(draw(250, 100, 100))
    print("wrote addon/icon.png and addon/logo.png")
