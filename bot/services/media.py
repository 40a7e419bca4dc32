"""Sanitise what reporters send: photos are re-encoded without any metadata before anyone else sees them.

A photo "sent as a file" keeps its EXIF block, GPS position included; whether Telegram strips it from
compressed photos is disputed. Only the re-encoded copy made here is ever stored or shown.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

from bot.domain.records import Media, MediaKind

# Larger images are scaled down: a caseworker needs to recognise a face or a building, not print a poster.
MAX_SIDE = 2048
MAX_INPUT_BYTES = 20 * 1024 * 1024
MAX_VOICE_BYTES = 20 * 1024 * 1024
# Decompression bombs: refuse images with more pixels than a 50-megapixel camera makes.
Image.MAX_IMAGE_PIXELS = 50_000_000


class UnsupportedMedia(Exception):
    """The file is not an image we can read, or it is too large."""


def sanitise_image(data: bytes) -> Media:
    """Re-encode an image as a metadata-free JPEG (orientation applied, at most MAX_SIDE pixels a side).

    Raises UnsupportedMedia for anything that is not a readable image or is too large.
    """
    if len(data) > MAX_INPUT_BYTES:
        raise UnsupportedMedia("image too large")
    try:
        with Image.open(io.BytesIO(data)) as source:
            source.load()
            upright = ImageOps.exif_transpose(source)
            rgb = upright.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise UnsupportedMedia(type(error).__name__) from None
    rgb.thumbnail((MAX_SIDE, MAX_SIDE))
    # A fresh image holds pixels only: no EXIF, XMP, ICC profile or comments survive the copy.
    clean = Image.new("RGB", rgb.size)
    clean.paste(rgb)
    out = io.BytesIO()
    clean.save(out, format="JPEG", quality=85, optimize=True)
    return Media(kind=MediaKind.PHOTO, content=out.getvalue(), mime_type="image/jpeg")


def voice_note(data: bytes, mime_type: str | None) -> Media:
    """Wrap a voice note's bytes; it is re-uploaded from these bytes later, never forwarded."""
    if len(data) > MAX_VOICE_BYTES:
        raise UnsupportedMedia("voice note too large")
    return Media(kind=MediaKind.VOICE, content=data, mime_type=mime_type or "audio/ogg")
