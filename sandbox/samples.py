"""Built-in sample media for simulated humans: a real PNG photo and a short WAV voice note, made in code."""

from __future__ import annotations

import io
import math
import struct
import wave
import zlib


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def sample_png(width: int = 160, height: int = 120) -> bytes:
    """Return a valid RGB PNG: a calm blue-green gradient with a lighter band, like a photo of a wall."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        for x in range(width):
            band = 40 if height // 3 < y < 2 * height // 3 else 0
            rows += bytes(((x * 255) // width // 3 + band, 90 + band + (y * 100) // height, 160 + band // 2))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _png_chunk(b"IEND", b"")
    )


def sample_voice(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """Return a valid mono 16-bit WAV: a soft two-tone chime lasting `seconds`."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = bytearray()
        for i in range(int(seconds * rate)):
            freq = 440 if i < rate * seconds / 2 else 660
            frames += struct.pack("<h", int(6000 * math.sin(2 * math.pi * freq * i / rate)))
        out.writeframes(bytes(frames))
    return buffer.getvalue()


def image_size(data: bytes) -> tuple[int, int]:
    """Return (width, height) of a PNG or JPEG, or (1, 1) when the format is not recognised."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            length = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            i += 2 + length
    return 1, 1
