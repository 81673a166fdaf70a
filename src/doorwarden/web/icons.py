"""The app icons of the web app manifest, drawn by code: `python -m doorwarden.web.icons`
writes static/icons/icon-{192,512}.png (committed; nothing is drawn at request time).

Plain zlib and struct, no imaging library: the mark of static/favicon.svg (a white
doorbell, camera eye above and button below, on a rounded brand-blue square).
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

SIZES = (192, 512)
BRAND = (0x1D, 0x4E, 0x89)
WHITE = (0xFF, 0xFF, 0xFF)
ICONS_DIR = Path(__file__).parent / "static" / "icons"


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def _in_rounded_rect(x: float, y: float, box: tuple[float, float, float, float], r: float) -> bool:
    left, top, right, bottom = box
    if not (left <= x <= right and top <= y <= bottom):
        return False
    cx = min(max(x, left + r), right - r)
    cy = min(max(y, top + r), bottom - r)
    return math.hypot(x - cx, y - cy) <= r


def _pixel(x: float, y: float, size: int) -> tuple[int, int, int, int]:
    # In favicon.svg's 32-unit grid.
    u, v = x * 32 / size, y * 32 / size
    if not _in_rounded_rect(u, v, (0, 0, 32, 32), 7):
        return (0, 0, 0, 0)
    eye = math.hypot(u - 16, v - 12) <= 3
    button = math.hypot(u - 16, v - 21) <= 2
    if _in_rounded_rect(u, v, (10, 5, 22, 27), 6) and not (eye or button):
        return (*WHITE, 255)
    return (*BRAND, 255)


def png(size: int) -> bytes:
    """An RGBA PNG of the icon, `size` pixels square."""
    rows = bytearray()
    for y in range(size):
        rows.append(0)  # filter: none
        for x in range(size):
            rows.extend(_pixel(x + 0.5, y + 0.5, size))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _chunk(b"IEND", b"")
    )


def main() -> None:
    ICONS_DIR.mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        (ICONS_DIR / f"icon-{size}.png").write_bytes(png(size))


if __name__ == "__main__":
    main()
