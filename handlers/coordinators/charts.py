"""A chart a shift lead can read at a glance: new cases per day by priority, and open cases by area.

Drawn with Pillow (already used to sanitise photos), as a PNG: no plotting library, no fonts to download.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from bot.domain.models import Priority
from bot.services.insight import Figures

WIDTH, HEIGHT = 1000, 620
COLOURS = {
    Priority.P1: (214, 39, 40),
    Priority.P2: (255, 127, 14),
    Priority.P3: (240, 200, 0),
    Priority.P4: (150, 150, 150),
}
INK = (40, 40, 40)
GRID = (225, 225, 225)


# Fonts that cover Latin with Vietnamese marks and CJK (Debian's fonts-noto-cjk, fonts-noto-core); Pillow's
# built-in font is the fallback where none is installed.
FONT_CANDIDATES = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"),
)


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for candidate in FONT_CANDIDATES:
        if candidate.exists():
            try:
                return ImageFont.truetype(str(candidate), size)
            except OSError:
                continue
    return ImageFont.load_default(size=size)


def render_chart(
    figures: Figures, title: str, bars_title: str, area_names: Sequence[tuple[str, int]]
) -> bytes:
    """PNG bytes: stacked daily bars (top) and open cases by area (bottom). Labels are given translated."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    draw.text((30, 14), title, fill=INK, font=_font(22))
    # Top: new cases per day, stacked by priority.
    left, top, right, bottom = 60, 60, WIDTH - 30, 330
    # A peak divisible by 4 keeps the grid's labels whole numbers.
    peak = 4 * math.ceil(max([sum(figures.per_day.get(day, {}).values()) for day in figures.days] + [1]) / 4)
    for step in range(5):
        y = bottom - (bottom - top) * step / 4
        draw.line((left, y, right, y), fill=GRID)
        draw.text((20, y - 8), str(peak * step // 4), fill=INK, font=_font(13))
    slot = (right - left) / max(1, len(figures.days))
    for index, day in enumerate(figures.days):
        x0 = left + index * slot + 2
        y = float(bottom)
        for priority in Priority:
            count = figures.per_day.get(day, {}).get(priority, 0)
            if count:
                height = (bottom - top) * count / peak
                draw.rectangle((x0, y - height, x0 + slot - 4, y), fill=COLOURS[priority])
                y -= height
    if figures.days:
        draw.text((left, bottom + 6), figures.days[0].isoformat(), fill=INK, font=_font(13))
        draw.text((right - 80, bottom + 6), figures.days[-1].isoformat(), fill=INK, font=_font(13))
    for index, priority in enumerate(Priority):
        x = right - 320 + index * 80
        draw.rectangle((x, 22, x + 14, 36), fill=COLOURS[priority])
        draw.text((x + 20, 20), priority.name, fill=INK, font=_font(15))
    # Bottom: open cases by area.
    draw.text((30, 360), bars_title, fill=INK, font=_font(18))
    most = max([count for _name, count in area_names] + [1])
    for index, (name, count) in enumerate(area_names[:8]):
        y = 392 + index * 27
        draw.text((30, y + 2), name[:32], fill=INK, font=_font(15))
        width = (WIDTH - 380) * count / most
        draw.rectangle((320, y, 320 + width, y + 20), fill=(31, 119, 180))
        draw.text((326 + width, y + 2), str(count), fill=INK, font=_font(15))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
