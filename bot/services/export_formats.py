"""File formats of case exports: CSV (optional HXL row and BOM), JSON Lines, XLSX and GeoJSON.

Every writer streams to a binary file object and keeps nothing per row (GeoJSON keeps one counter per
area), so an export of a million cases uses as little memory as one of ten. XLSX is written directly as
a zip of XML parts, entry by entry, so that it can stream into an encrypting pipe without a temporary
file in clear.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Protocol

# Only writes XML (escaping text); nothing here parses XML.
from xml.sax.saxutils import escape  # nosec B406

from bot.domain.export import (
    MISSING,
    Column,
    ExportCase,
    ExportFormat,
    ExportLevel,
    Value,
)
from bot.domain.gazetteer import Gazetteer
from bot.domain.models import Priority
from bot.domain.workflow import OPEN_STATUSES

__all__ = [
    "XLSX_MAX_ROWS",
    "AreaInfo",
    "ExportSummary",
    "FormatWriter",
    "area_lookup",
    "make_writer",
]

XLSX_MAX_ROWS = 1_048_576  # Excel's rows per sheet, the header row included
XLSX_MAX_CELL = 32_767  # Excel's characters per cell

# Characters XML 1.0 forbids (C0 controls other than tab, newline, carriage return; lone surrogates).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# A cell starting with one of these is run as a formula by spreadsheet programs (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class AreaInfo:
    """What GeoJSON needs of a gazetteer area."""

    name: str
    country: str
    latitude: float
    longitude: float


def area_lookup(gazetteer: Gazetteer) -> Callable[[str], AreaInfo | None]:
    """What GeoJSON needs of the gazetteer's areas, by id."""

    def lookup(area_id: str) -> AreaInfo | None:
        area = gazetteer.area(area_id)
        if area is None:
            return None
        return AreaInfo(
            name=area.name, country=area.country, latitude=area.latitude, longitude=area.longitude
        )

    return lookup


@dataclass
class ExportSummary:
    """What an export wrote; shown to the person, written to the audit trail, and put in the file."""

    level: ExportLevel
    format: ExportFormat
    generated_at: datetime
    filters: Mapping[str, str]
    rows: int = 0
    suppressed: int = 0
    k: int | None = None
    generalisation: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "level": self.level.value,
            "format": self.format.value,
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "filters": dict(self.filters),
            "rows": self.rows,
            "suppressed": self.suppressed,
            "k": self.k,
            "generalisation": dict(self.generalisation),
        }


class FormatWriter(Protocol):
    def begin(self, columns: Sequence[Column]) -> None: ...

    def row(self, case: ExportCase, values: Sequence[Value]) -> None: ...

    def end(self, summary: ExportSummary) -> None:
        """Finish the file; a writer that aggregates sets ``summary.rows`` and ``summary.suppressed``."""


# --- CSV ---------------------------------------------------------------------------------------------


def _csv_text(value: Value) -> str:
    if type(value) is str:  # the commonest value, checked first (same result as below)
        return "'" + value if value.startswith(_FORMULA_START) else value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = "; ".join(value) if isinstance(value, tuple) else value
    # A value that would run as a formula in a spreadsheet is kept as text (OWASP CSV injection).
    return "'" + text if text.startswith(_FORMULA_START) else text


class CsvWriter:
    def __init__(self, out: IO[bytes], *, hxl: bool, bom: bool) -> None:
        self._text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
        if bom:
            self._text.write(codecs.BOM_UTF8.decode("utf-8"))
        self._csv = csv.writer(self._text, lineterminator="\r\n")
        self._hxl = hxl

    def begin(self, columns: Sequence[Column]) -> None:
        self._csv.writerow([column.name for column in columns])
        if self._hxl:
            self._csv.writerow([column.hxl for column in columns])

    def row(self, case: ExportCase, values: Sequence[Value]) -> None:
        self._csv.writerow([_csv_text(value) for value in values])

    def end(self, summary: ExportSummary) -> None:
        self._text.flush()
        self._text.detach()


# --- JSON Lines --------------------------------------------------------------------------------------


def _json_value(value: Value) -> object:
    return list(value) if isinstance(value, tuple) else value


class JsonlWriter:
    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._names: list[str] = []

    def begin(self, columns: Sequence[Column]) -> None:
        self._names = [column.name for column in columns]

    def row(self, case: ExportCase, values: Sequence[Value]) -> None:
        record = {name: _json_value(value) for name, value in zip(self._names, values, strict=True)}
        self._out.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")

    def end(self, summary: ExportSummary) -> None:
        self._out.flush()


# --- XLSX --------------------------------------------------------------------------------------------


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def _xml_text(text: str) -> str:
    if not (text.isascii() and text.isprintable()):  # printable ASCII holds no character XML forbids
        text = _XML_ILLEGAL.sub("\ufffd", text)
    if len(text) > XLSX_MAX_CELL:
        text = text[: XLSX_MAX_CELL - 12] + " [truncated]"
    return escape(text)


def _xlsx_cell(ref: str, value: Value, style: int = 0) -> str:
    if value is None:
        return ""
    styled = f' s="{style}"' if style else ""
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"{styled}><v>{int(value)}</v></c>'
    if isinstance(value, (int, float)):
        return f'<c r="{ref}"{styled}><v>{value!r}</v></c>'
    text = "; ".join(value) if isinstance(value, tuple) else value
    space = ' xml:space="preserve"' if text != text.strip() or "\n" in text else ""
    return f'<c r="{ref}" t="inlineStr"{styled}><is><t{space}>{_xml_text(text)}</t></is></c>'


_CONTENT_TYPES_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
)
_SHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" '
    'state="frozen"/></sheetView></sheetViews><sheetData>'
)
_SHEET_TAIL = "</sheetData></worksheet>"


class XlsxWriter:
    """A minimal, standard Office Open XML workbook: the cases (split over sheets past Excel's row limit),
    then a "columns" sheet (the dictionary) and an "about" sheet (level, filters, counts)."""

    def __init__(self, out: IO[bytes], *, max_rows: int = XLSX_MAX_ROWS) -> None:
        self._zip = zipfile.ZipFile(out, mode="w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        self._sheets: list[str] = []
        self._sheet: IO[bytes] | None = None
        self._columns: Sequence[Column] = ()
        self._letters: list[str] = []
        self._row = 0
        self._max_rows = max_rows
        self._buffer: list[str] = []

    def _open_sheet(self, name: str, header: Sequence[str]) -> None:
        self._close_sheet()
        self._sheets.append(name)
        self._sheet = self._zip.open(
            f"xl/worksheets/sheet{len(self._sheets)}.xml", mode="w", force_zip64=True
        )
        self._sheet.write(_SHEET_HEAD.encode())
        self._row = 0
        self._write_row(header, style=1)

    def _write_row(self, values: Sequence[Value], style: int = 0) -> None:
        self._row += 1
        row = self._row
        if len(values) > len(self._letters):
            self._letter(len(values) - 1)
        letters = self._letters
        cells = "".join(_xlsx_cell(f"{letters[i]}{row}", value, style) for i, value in enumerate(values))
        if values and values[-1] is None:
            # An empty last cell still marks the row's width, so readers see every row as wide as the
            # header (the sheet has no <dimension>: it is written before the row count is known).
            cells += f'<c r="{self._letter(len(values) - 1)}{row}"/>'
        self._buffer.append(f'<row r="{row}">{cells}</row>')
        if len(self._buffer) >= 256:
            self._flush()

    def _letter(self, index: int) -> str:
        while index >= len(self._letters):
            self._letters.append(_column_letter(len(self._letters)))
        return self._letters[index]

    def _flush(self) -> None:
        if self._sheet is not None and self._buffer:
            self._sheet.write("".join(self._buffer).encode("utf-8"))
        self._buffer.clear()

    def _close_sheet(self) -> None:
        if self._sheet is not None:
            self._flush()
            self._sheet.write(_SHEET_TAIL.encode())
            self._sheet.close()
            self._sheet = None

    def begin(self, columns: Sequence[Column]) -> None:
        self._columns = columns
        self._open_sheet("cases", [column.name for column in columns])

    def row(self, case: ExportCase, values: Sequence[Value]) -> None:
        if self._row >= self._max_rows:
            self._open_sheet(f"cases {len(self._sheets) + 1}", [column.name for column in self._columns])
        self._write_row(values)

    def end(self, summary: ExportSummary) -> None:
        self._open_sheet("columns", ["column", "HTCDS / CTDC", "HXL", "meaning"])
        for column in self._columns:
            self._write_row([column.name, column.standard or None, column.hxl, column.description])
        self._open_sheet("about", ["item", "value"])
        for key, value in summary.as_dict().items():
            if isinstance(value, dict):
                for inner, inner_value in value.items():
                    self._write_row([f"{key}.{inner}", str(inner_value)])
            else:
                self._write_row([key, None if value is None else str(value)])
        self._close_sheet()
        self._write_parts()
        self._zip.close()

    def _write_parts(self) -> None:
        overrides = "".join(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{_SHEET_TYPE}"/>'
            for i in range(1, len(self._sheets) + 1)
        )
        self._zip.writestr("[Content_Types].xml", _CONTENT_TYPES_HEAD + overrides + "</Types>")
        self._zip.writestr("_rels/.rels", _ROOT_RELS)
        sheets = "".join(
            f'<sheet name="{escape(name)}" sheetId="{i}" r:id="rId{i}"/>'
            for i, name in enumerate(self._sheets, 1)
        )
        self._zip.writestr(
            "xl/workbook.xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f"<sheets>{sheets}</sheets></workbook>",
        )
        relationships = "".join(
            f'<Relationship Id="rId{i}" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
            f'Target="worksheets/sheet{i}.xml"/>'
            for i in range(1, len(self._sheets) + 1)
        )
        styles_id = len(self._sheets) + 1
        self._zip.writestr(
            "xl/_rels/workbook.xml.rels",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f"{relationships}"
            f'<Relationship Id="rId{styles_id}" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
            'Target="styles.xml"/></Relationships>',
        )
        self._zip.writestr("xl/styles.xml", _STYLES)


# --- GeoJSON -----------------------------------------------------------------------------------------


@dataclass
class _AreaCount:
    cases: int = 0
    open_cases: int = 0
    priority_1: int = 0
    immediate_danger: int = 0
    last_day: str = ""


class GeoJsonWriter:
    """Hotspots at area resolution: one point per gazetteer area (its approximate centre) with counts.

    At the public level an area with fewer than ``k`` cases is left out (its cases are counted as
    suppressed) and only the case count is published, as CTDC does for small aggregates.
    """

    def __init__(
        self, out: IO[bytes], *, level: ExportLevel, areas: Callable[[str], AreaInfo | None], k: int
    ) -> None:
        self._out = out
        self._level = level
        self._areas = areas
        self._k = k
        self._counts: dict[str, _AreaCount] = {}
        self._unlocated = 0

    def begin(self, columns: Sequence[Column]) -> None:
        """GeoJSON aggregates: it has no columns."""

    def row(self, case: ExportCase, values: Sequence[Value]) -> None:
        if case.area_id is None or self._areas(case.area_id) is None:
            self._unlocated += 1
            return
        count = self._counts.setdefault(case.area_id, _AreaCount())
        count.cases += 1
        count.open_cases += case.status in OPEN_STATUSES
        count.priority_1 += case.priority is Priority.P1
        count.immediate_danger += bool(case.immediate_danger)
        count.last_day = max(count.last_day, case.created_at.date().isoformat())

    def end(self, summary: ExportSummary) -> None:
        public = self._level is ExportLevel.PUBLIC
        features = []
        suppressed = 0
        published = 0
        for area_id, count in sorted(self._counts.items(), key=lambda item: (-item[1].cases, item[0])):
            area = self._areas(area_id)
            if area is None:  # pragma: no cover - filtered in row()
                continue
            if public and count.cases < self._k:
                suppressed += count.cases
                continue
            published += count.cases
            properties: dict[str, object] = {
                "area_id": area_id,
                "area_name": area.name,
                "country": area.country,
                "cases": count.cases,
            }
            if not public:
                properties |= {
                    "open_cases": count.open_cases,
                    "priority_1": count.priority_1,
                    "immediate_danger": count.immediate_danger,
                    "last_report_on": count.last_day,
                }
            features.append(
                {
                    "type": "Feature",
                    "id": area_id,
                    "geometry": {"type": "Point", "coordinates": [area.longitude, area.latitude]},
                    "properties": properties,
                }
            )
        unlocated = self._unlocated
        if public and unlocated < self._k:
            suppressed += unlocated
            unlocated = 0
        summary.rows = published
        summary.suppressed = suppressed
        summary.k = self._k if public else None
        collection = {
            "type": "FeatureCollection",
            "features": features,
            # A foreign member (RFC 7946, section 6.1): what this file is and what it leaves out.
            "beacon": summary.as_dict() | {"unlocated_cases": unlocated if unlocated else MISSING},
        }
        self._out.write(json.dumps(collection, ensure_ascii=False, indent=1).encode("utf-8") + b"\n")
        self._out.flush()


def make_writer(
    fmt: ExportFormat,
    out: IO[bytes],
    *,
    level: ExportLevel,
    hxl: bool = False,
    bom: bool = False,
    areas: Callable[[str], AreaInfo | None] = lambda _: None,
    k: int = 11,
) -> FormatWriter:
    """The writer of ``fmt`` streaming into ``out``."""
    if fmt is ExportFormat.CSV:
        return CsvWriter(out, hxl=hxl, bom=bom)
    if fmt is ExportFormat.JSONL:
        return JsonlWriter(out)
    if fmt is ExportFormat.XLSX:
        return XlsxWriter(out)
    return GeoJsonWriter(out, level=level, areas=areas, k=k)
