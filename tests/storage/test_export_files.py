"""Exports end to end on a real database with planted markers: what each level and format carries, the
CSV, XLSX and GeoJSON details, age encryption, files that appear only when complete, and the bot's
role-checked, size-capped, audited /export."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
import os
import shutil
import stat
import zipfile
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite
import openpyxl
import pyrage
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.crypto import Keyring
from bot.domain.export import (
    ExportFilters,
    ExportFormat,
    ExportLevel,
    columns_for,
    parse_filters,
)
from bot.domain.gazetteer import load_gazetteer
from bot.domain.models import Place, Report
from bot.domain.workflow import Role
from bot.services.export import ExportRequest, ExportService, NeedsEncryption, write_export
from bot.services.export_formats import ExportSummary, XlsxWriter, area_lookup, make_writer
from bot.services.export_sinks import (
    AgeEncryptor,
    CappedBuffer,
    ExportError,
    ExportTooLarge,
    RecipientError,
    atomic_output,
    parse_recipients,
)
from storage.audit import audit_entries, verify_audit
from storage.cases import CaseStore
from storage.db import open_database
from storage.export import ExportReader, record_export
from storage.migrations import migrate
from storage.workflow import StaffStore, WorkflowStore
from tests.storage.factories import NOW, ROOT, Clock, make_case, rich_report

K = 11
GENERATED = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
COORDINATOR = 222
TABULAR = [ExportFormat.CSV, ExportFormat.JSONL, ExportFormat.XLSX]
PUBLIC_QUASI_IDENTIFIERS = [
    "registrationPeriod",
    "CountryOfExploitation",
    "areaOfExploitation",
    "citizenship",
    "ageBroad",
    "gender",
    "reporterType",
]
# Exact points the reporters shared; the gazetteer's centres have three decimals.
EXACT = ["10.627543", "103.522016", "16.701234", "98.512345"]
EXACT_DIGITS = ["627543", "522016", "701234", "512345"]

GAZETTEER = load_gazetteer(None)


areas = area_lookup(GAZETTEER)


@dataclass
class Seeded:
    """The planted database: which cases exist and what must (not) leave it."""

    path: Path
    sihanouk: list[str] = field(default_factory=list)  # 12 active cases in kh-preah-sihanouk
    myawaddy: list[str] = field(default_factory=list)  # 2 active cases in mm-myawaddy
    unlocated: str = ""
    withdrawn: str = ""
    quarantined: str = ""
    formula: str = ""
    full_markers: list[str] = field(default_factory=list)  # every one in a full tabular export
    never: list[str] = field(default_factory=list)  # in no export at any level

    @property
    def active(self) -> list[str]:
        return [*self.sihanouk, *self.myawaddy, self.unlocated]

    @property
    def every(self) -> list[str]:
        return [*self.active, self.withdrawn, self.quarantined]


async def plant(path: Path) -> Seeded:
    """15 active cases (12 in Sihanoukville, 2 in Myawaddy, 1 unlocated), one withdrawn, one quarantined;
    markers in every free-text field, a distinct reporter chat id on each."""
    seeded = Seeded(path=path)
    keyring, clock = Keyring(ROOT), Clock()
    conn = await open_database(path)
    await migrate(conn)
    store, workflow = CaseStore(conn, keyring, clock=clock), WorkflowStore(conn, keyring, clock=clock)
    number = 0

    async def create(report: Report, **kwargs) -> str:
        nonlocal number
        number += 1
        user_id, chat_id = 8_100_000_000 + number, 9_200_000_000 + number
        new, receipt = make_case(
            keyring,
            report=report,
            created_at=NOW + timedelta(minutes=number),
            user_id=user_id,
            chat_id=chat_id,
            **kwargs,
        )
        await store.create_case(new)
        seeded.never += [str(chat_id), str(user_id), keyring.pseudonym(user_id), receipt]
        return new.case_id

    try:
        for index in range(12):
            marker = f"MARK{index:02d}"
            report = rich_report(marker)
            if index == 0:
                report = report.model_copy(update={"details": "=FORMULA-MARK+1"})
                seeded.full_markers.append("FORMULA-MARK")
            else:
                seeded.full_markers.append(f"{marker}-details")
            seeded.full_markers += [
                f"{marker}-place",
                f"{marker}-name",
                f"{marker}PP12345",
                f"@{marker}_handle",
            ]
            seeded.sihanouk.append(await create(report))
        seeded.formula = seeded.sihanouk[0]
        clock.now = NOW + timedelta(hours=1)
        await store.add_information(seeded.sihanouk[1], "ADDITION-MARK found the floor", (), update_id=None)
        await workflow.add_note(seeded.sihanouk[2], "NOTE-MARK called the embassy", COORDINATOR)
        seeded.full_markers += ["ADDITION-MARK", "NOTE-MARK"]

        for index in range(2):
            report = Report(
                place=Place(latitude=16.701234, longitude=98.512345, country="MM", area_id="mm-myawaddy"),
                details=f"MYA{index}-details",
            )
            seeded.myawaddy.append(await create(report))
            seeded.full_markers.append(f"MYA{index}-details")
        seeded.unlocated = await create(Report(place=Place(unknown=True), details="NOWHERE-MARK"))
        seeded.full_markers.append("NOWHERE-MARK")

        seeded.withdrawn = await create(rich_report("WDRN"))
        await store.withdraw(seeded.withdrawn, update_id=None)
        seeded.never += ["WDRN-details", "WDRN-place", "WDRN-name", "WDRNPP12345", "@WDRN_handle"]
        seeded.quarantined = await create(rich_report("QUAR"), quarantined=True)
        seeded.full_markers += ["QUAR-details", "QUAR-place", "QUARPP12345", *EXACT]
    finally:
        await conn.close()
    return seeded


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Seeded:
    """The planted database, written once per module (each case is a synced transaction)."""
    return asyncio.run(plant(tmp_path_factory.mktemp("template") / "beacon.db"))


@pytest.fixture
def seeded(template, tmp_path) -> Seeded:
    """A fresh copy of the planted database for one test."""
    path = tmp_path / "seeded.db"
    shutil.copyfile(template.path, path)
    return dataclasses.replace(template, path=path)


@pytest.fixture
async def seeded_conn(seeded) -> AsyncIterator[aiosqlite.Connection]:
    """A read-write connection to the test's copy (for the audit trail and staff)."""
    connection = await open_database(seeded.path)
    yield connection
    await connection.close()


async def export(
    path: Path, keyring, level: ExportLevel, fmt: ExportFormat, **options
) -> tuple[bytes, ExportSummary]:
    out = io.BytesIO()
    async with await ExportReader.open(path, keyring) as reader:
        summary = await write_export(
            reader, ExportRequest(level=level, format=fmt, **options), out, areas=areas, now=GENERATED
        )
    return out.getvalue(), summary


def text_of(fmt: ExportFormat, data: bytes) -> str:
    """Everything in the file as text (every part of an XLSX zip, uncompressed)."""
    if fmt is ExportFormat.XLSX:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "\n".join(archive.read(name).decode("utf-8") for name in archive.namelist())
    return data.decode("utf-8")


def jsonl(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


# --- what each level carries -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", TABULAR)
async def test_full_carries_every_marker_and_exact_point_but_never_the_reporter(seeded, keyring, fmt):
    data, summary = await export(seeded.path, keyring, ExportLevel.FULL, fmt)
    text = text_of(fmt, data)
    missing = [marker for marker in seeded.full_markers if marker not in text]
    assert not missing
    leaked = [secret for secret in seeded.never if secret in text]
    assert not leaked
    assert all(case_id in text for case_id in seeded.every)
    assert summary.rows == 17


@pytest.mark.parametrize("level", [ExportLevel.PARTNER, ExportLevel.PUBLIC])
@pytest.mark.parametrize("fmt", list(ExportFormat))
async def test_partner_and_public_carry_no_free_text_no_exact_point_no_reporter(seeded, keyring, level, fmt):
    data, _ = await export(seeded.path, keyring, level, fmt)
    text = text_of(fmt, data)
    leaked = [
        marker
        for marker in [*seeded.full_markers, *seeded.never, *EXACT_DIGITS, "MARK", "WDRN", "QUAR"]
        if marker in text
    ]
    assert not leaked
    hidden = [seeded.withdrawn, seeded.quarantined]
    if level is ExportLevel.PUBLIC:
        hidden = seeded.every
    assert not [case_id for case_id in hidden if case_id in text]


async def test_partner_rows_are_the_active_cases_with_area_and_day(seeded, keyring):
    data, summary = await export(seeded.path, keyring, ExportLevel.PARTNER, ExportFormat.JSONL)
    records = jsonl(data)
    assert sorted(record["case_id"] for record in records) == sorted(seeded.active)
    assert summary.rows == 15
    assert all(len(record["registered_on"]) == len("2026-03-01") for record in records)
    assert Counter(record["area_id"] for record in records) == {
        "kh-preah-sihanouk": 12,
        "mm-myawaddy": 2,
        None: 1,
    }


async def test_full_rows_include_withdrawn_and_quarantined_flagged(seeded, keyring):
    data, _ = await export(seeded.path, keyring, ExportLevel.FULL, ExportFormat.JSONL)
    records = {record["case_id"]: record for record in jsonl(data)}
    assert set(records) == set(seeded.every)
    withdrawn = records[seeded.withdrawn]
    assert withdrawn["withdrawn_at"] is not None
    assert withdrawn["details"] is None  # erased by the withdrawal, not brought back
    assert records[seeded.quarantined]["quarantined"] is True
    assert records[seeded.sihanouk[1]]["additions"] == ["ADDITION-MARK found the floor"]
    assert records[seeded.sihanouk[2]]["coordinator_notes"] == ["NOTE-MARK called the embassy"]
    assert records[seeded.sihanouk[3]]["latitude"] == 10.627543


@pytest.mark.parametrize(("k", "max_suppression"), [(K, 0.1), (2, 0.1), (5, 0.0), (16, 0.5)])
async def test_public_rows_are_k_anonymous_and_say_how_many_were_suppressed(
    seeded, keyring, k, max_suppression
):
    """Every combination of quasi-identifiers in the public CSV occurs at least k times; rows plus
    suppressed records are the active cases."""
    data, summary = await export(
        seeded.path, keyring, ExportLevel.PUBLIC, ExportFormat.CSV, k=k, max_suppression=max_suppression
    )
    header, *rows = csv_rows(data)
    positions = [header.index(name) for name in PUBLIC_QUASI_IDENTIFIERS]
    groups = Counter(tuple(row[i] for i in positions) for row in rows)
    assert all(count >= k for count in groups.values()), groups
    assert len(rows) == summary.rows
    assert summary.rows + summary.suppressed == 15
    assert summary.k == k
    if k > 15:
        assert summary.rows == 0
    if k == 2:
        # Sihanoukville's twelve and Myawaddy's two are large enough to keep their area.
        assert Counter(row[header.index("areaOfExploitation")] for row in rows)["kh-preah-sihanouk"] == 12


# --- CSV ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", list(ExportLevel))
async def test_csv_header_and_hxl_row_are_the_column_dictionary(seeded, keyring, level):
    data, _ = await export(seeded.path, keyring, level, ExportFormat.CSV, hxl=True)
    header, hashtags, *rows = csv_rows(data)
    assert header == [column.name for column in columns_for(level)]
    assert hashtags == [column.hxl for column in columns_for(level)]
    assert all(len(row) == len(header) for row in rows)
    plain, _ = await export(seeded.path, keyring, level, ExportFormat.CSV)
    assert csv_rows(plain)[1] != hashtags


async def test_csv_starts_with_a_bom_only_when_asked(seeded, keyring):
    with_bom, _ = await export(seeded.path, keyring, ExportLevel.PARTNER, ExportFormat.CSV, bom=True)
    without, _ = await export(seeded.path, keyring, ExportLevel.PARTNER, ExportFormat.CSV)
    assert with_bom.startswith(b"\xef\xbb\xbfcase_id,")
    assert without.startswith(b"case_id,")
    assert with_bom[3:] == without


async def test_csv_keeps_a_formula_as_text_and_jsonl_keeps_it_as_written(seeded, keyring):
    data, _ = await export(seeded.path, keyring, ExportLevel.FULL, ExportFormat.CSV)
    header, *rows = csv_rows(data)
    row = next(row for row in rows if row[header.index("case_id")] == seeded.formula)
    assert row[header.index("details")] == "'=FORMULA-MARK+1"
    assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row)
    records = jsonl((await export(seeded.path, keyring, ExportLevel.FULL, ExportFormat.JSONL))[0])
    assert next(r for r in records if r["case_id"] == seeded.formula)["details"] == "=FORMULA-MARK+1"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(max_size=30)
    | st.sampled_from(FORMULA_STARTS).flatmap(lambda c: st.text(max_size=10).map(c.__add__))
)
def test_any_csv_cell_reads_back_as_written_or_quoted_as_text(text):
    """Whatever the text, it reads back unchanged, except that a would-be formula gains a leading quote;
    no cell a spreadsheet would run as a formula is ever written."""
    columns = columns_for(ExportLevel.FULL)[:2]
    out = io.BytesIO()
    writer = make_writer(ExportFormat.CSV, out, level=ExportLevel.FULL)
    writer.begin(columns)
    writer.row(None, [text, (text, "b")])  # type: ignore[arg-type]
    writer.end(ExportSummary(ExportLevel.FULL, ExportFormat.CSV, GENERATED, {}))
    _, [cell, joined] = csv_rows(out.getvalue())
    guarded = text.startswith(FORMULA_STARTS)
    assert cell == ("'" + text if guarded else text)
    assert joined == ("'" if guarded else "") + f"{text}; b"
    assert not cell.startswith(FORMULA_STARTS)


# --- XLSX ---------------------------------------------------------------------------------------------


def cell_value(value: object) -> object:
    """A JSONL value as the XLSX writer stores it: lists joined with "; ", nothing for empty."""
    if isinstance(value, list):
        value = "; ".join(value)
    return None if value in ("", None) else value


@pytest.mark.parametrize("level", list(ExportLevel))
async def test_xlsx_opens_in_openpyxl_and_matches_the_jsonl(seeded, keyring, level):
    data, summary = await export(seeded.path, keyring, level, ExportFormat.XLSX, k=2)
    records = jsonl((await export(seeded.path, keyring, level, ExportFormat.JSONL, k=2))[0])
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["cases", "columns", "about"]
    header, *rows = list(book["cases"].iter_rows(values_only=True))
    names = [column.name for column in columns_for(level)]
    assert list(header) == names
    assert len(rows) == len(records) == summary.rows
    for row, record in zip(rows, records, strict=True):
        assert [None if value == "" else value for value in row] == [cell_value(record[n]) for n in names]

    dictionary = list(book["columns"].iter_rows(values_only=True))
    assert dictionary[0] == ("column", "HTCDS / CTDC", "HXL", "meaning")
    assert [row[0] for row in dictionary[1:]] == names
    assert [row[2] for row in dictionary[1:]] == [column.hxl for column in columns_for(level)]
    about = {key: value for key, value in book["about"].iter_rows(min_row=2, values_only=True)}
    assert about["level"] == level.value
    assert about["rows"] == str(summary.rows)
    assert about["suppressed"] == str(summary.suppressed)
    book.close()


async def test_xlsx_splits_rows_over_sheets_past_max_rows(seeded, keyring):
    """With five rows a sheet (header included), 15 cases fill "cases", "cases 2", ... in order."""
    columns = columns_for(ExportLevel.PARTNER)
    out = io.BytesIO()
    writer = XlsxWriter(out, max_rows=5)
    writer.begin(columns)
    async with await ExportReader.open(seeded.path, keyring) as reader:
        async for batch in reader.cases(ExportFilters(), only_active=True, batch_size=4):
            for case in batch:
                writer.row(case, [case.case_id, *(None for _ in columns[1:])])
    summary = ExportSummary(ExportLevel.PARTNER, ExportFormat.XLSX, GENERATED, {}, rows=15)
    writer.end(summary)
    book = openpyxl.load_workbook(io.BytesIO(out.getvalue()))
    assert book.sheetnames == ["cases", "cases 2", "cases 3", "cases 4", "columns", "about"]
    seen = []
    for name in book.sheetnames[:4]:
        header, *rows = list(book[name].iter_rows(values_only=True))
        assert header[0] == "case_id"
        assert 1 <= len(rows) <= 4
        seen += [row[0] for row in rows]
    book.close()
    assert sorted(seen) == sorted(seeded.active)
    assert len(seen) == 15


def test_xlsx_keeps_text_xml_cannot_hold_and_long_cells_readable():
    """Control characters become U+FFFD and a cell past Excel's limit is cut with a note; the file opens."""
    columns = columns_for(ExportLevel.FULL)[:3]
    out = io.BytesIO()
    writer = XlsxWriter(out)
    writer.begin(columns)
    writer.row(None, ["bell\x07 and\x0bvertical tab", "x" * 40_000, "  padded <b>&amp;</b> "])  # type: ignore[arg-type]
    writer.end(ExportSummary(ExportLevel.FULL, ExportFormat.XLSX, GENERATED, {}, rows=1))
    book = openpyxl.load_workbook(io.BytesIO(out.getvalue()))
    control, long, padded = next(book["cases"].iter_rows(min_row=2, values_only=True))
    assert control == "bell\ufffd and\ufffdvertical tab"
    assert len(long) == 32_767
    assert long.endswith(" [truncated]")
    assert padded == "  padded <b>&amp;</b> "


# --- GeoJSON ------------------------------------------------------------------------------------------


def features_of(data: bytes) -> tuple[dict, dict[str, dict]]:
    collection = json.loads(data)
    assert collection["type"] == "FeatureCollection"
    by_area = {}
    for feature in collection["features"]:
        assert feature["type"] == "Feature"
        assert feature["geometry"]["type"] == "Point"
        longitude, latitude = feature["geometry"]["coordinates"]
        area = GAZETTEER.area(feature["id"])
        assert area is not None
        assert (longitude, latitude) == (area.longitude, area.latitude)
        assert feature["properties"]["area_id"] == feature["id"]
        by_area[feature["id"]] = feature["properties"]
    return collection, by_area


@pytest.mark.parametrize("level", [ExportLevel.FULL, ExportLevel.PARTNER])
async def test_geojson_counts_each_area_at_its_centre(seeded, keyring, level):
    data, summary = await export(seeded.path, keyring, level, ExportFormat.GEOJSON)
    collection, by_area = features_of(data)
    records = jsonl((await export(seeded.path, keyring, level, ExportFormat.JSONL))[0])
    expected = Counter(record["area_id"] for record in records if record["area_id"])
    assert {area: properties["cases"] for area, properties in by_area.items()} == expected
    unlocated = sum(1 for record in records if not record["area_id"])
    assert collection["beacon"]["unlocated_cases"] == unlocated
    assert sum(expected.values()) + unlocated == len(records)
    assert summary.rows == sum(expected.values())
    assert by_area["mm-myawaddy"]["priority_1"] == 2


async def test_public_geojson_leaves_out_areas_under_k_and_says_so(seeded, keyring):
    data, summary = await export(seeded.path, keyring, ExportLevel.PUBLIC, ExportFormat.GEOJSON)
    collection, by_area = features_of(data)
    assert by_area == {
        "kh-preah-sihanouk": {
            "area_id": "kh-preah-sihanouk",
            "area_name": GAZETTEER.area("kh-preah-sihanouk").name,  # type: ignore[union-attr]
            "country": "KH",
            "cases": 12,
        }
    }
    assert (summary.rows, summary.suppressed, summary.k) == (12, 3, K)
    beacon = collection["beacon"]
    assert (beacon["rows"], beacon["suppressed"], beacon["k"]) == (12, 3, K)
    assert beacon["unlocated_cases"] == -99
    lower, _ = await export(seeded.path, keyring, ExportLevel.PUBLIC, ExportFormat.GEOJSON, k=2)
    assert set(features_of(lower)[1]) == {"kh-preah-sihanouk", "mm-myawaddy"}


async def test_filters_and_progress_reach_the_export(seeded, keyring):
    """An area filter narrows the rows; the summary records the filters; progress reaches the total."""
    seen: list[tuple[int, int]] = []
    async with await ExportReader.open(seeded.path, keyring) as reader:
        out = io.BytesIO()
        filters = parse_filters(area=["mm-myawaddy"], known_areas=lambda a: areas(a) is not None)
        summary = await write_export(
            reader,
            ExportRequest(ExportLevel.PARTNER, ExportFormat.JSONL, filters=filters),
            out,
            areas=areas,
            progress=lambda done, total: seen.append((done, total)),
        )
    assert sorted(record["case_id"] for record in jsonl(out.getvalue())) == sorted(seeded.myawaddy)
    assert summary.filters["filter_area"] == "mm-myawaddy"
    assert seen[-1] == (2, 2)


# --- age encryption and files -------------------------------------------------------------------------


async def encrypted_export(
    path: Path, keyring, target: Path, recipients, level: ExportLevel
) -> ExportSummary:
    with atomic_output(target) as destination:
        raw = AgeEncryptor(destination, recipients)
        out = io.BufferedWriter(raw, buffer_size=1 << 12)
        try:
            async with await ExportReader.open(path, keyring) as reader:
                summary = await write_export(
                    reader, ExportRequest(level, ExportFormat.JSONL), out, areas=areas, now=GENERATED
                )
            out.flush()
        finally:
            raw.close()
    return summary


async def test_age_round_trip_gives_exactly_the_plaintext_export(seeded, keyring, tmp_path):
    identity = pyrage.x25519.Identity.generate()
    target = tmp_path / "out" / "full.jsonl.age"
    target.parent.mkdir()
    summary = await encrypted_export(seeded.path, keyring, target, [identity.to_public()], ExportLevel.FULL)
    ciphertext = target.read_bytes()
    assert ciphertext.startswith(b"age-encryption.org/v1\n")
    assert not [marker for marker in seeded.full_markers if marker.encode() in ciphertext]
    plaintext, _ = await export(seeded.path, keyring, ExportLevel.FULL, ExportFormat.JSONL)
    assert pyrage.decrypt(ciphertext, [identity]) == plaintext
    assert summary.rows == 17
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(target.parent) == ["full.jsonl.age"]
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(ciphertext, [pyrage.x25519.Identity.generate()])


async def test_a_recipients_file_encrypts_to_each_recipient(seeded, keyring, tmp_path):
    first, second = pyrage.x25519.Identity.generate(), pyrage.x25519.Identity.generate()
    recipients_file = tmp_path / "recipients.txt"
    recipients_file.write_text(
        f"# the NGO's two analysts\n\n  {first.to_public()}  \n# second laptop\n{second.to_public()}\n"
    )
    recipients = parse_recipients([str(recipients_file)])
    assert [str(r) for r in recipients] == [str(first.to_public()), str(second.to_public())]
    target = tmp_path / "partner.jsonl.age"
    await encrypted_export(seeded.path, keyring, target, recipients, ExportLevel.PARTNER)
    plaintext, _ = await export(seeded.path, keyring, ExportLevel.PARTNER, ExportFormat.JSONL)
    for identity in (first, second):
        assert pyrage.decrypt(target.read_bytes(), [identity]) == plaintext
    assert len(parse_recipients([str(first.to_public()), str(recipients_file)])) == 3


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("age1notarecipient", "cannot read recipient"),
        ("ssh-ed25519 AAAAnotakey", "cannot read recipient"),
        ("ssh-dss AAAAB3NzaC1kc3M", "not an age"),
        ("no-such-recipients.txt", "No such file"),
        ("", "cannot read recipients file"),
    ],
)
def test_an_unreadable_recipient_is_one_line(tmp_path, monkeypatch, value, needle):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RecipientError) as caught:
        parse_recipients([value])
    message = str(caught.value)
    assert needle in message
    assert len(message.splitlines()) == 1


def test_a_recipients_file_with_no_or_bad_recipients_is_refused(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nobody yet\n\n")
    with pytest.raises(RecipientError, match="holds no recipient"):
        parse_recipients([str(empty)])
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{pyrage.x25519.Identity.generate().to_public()}\nage1broken\n")
    with pytest.raises(RecipientError, match=r"in .*bad\.txt"):
        parse_recipients([str(bad)])
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00age")
    with pytest.raises(RecipientError, match="UnicodeDecodeError"):
        parse_recipients([str(binary)])
    with pytest.raises(RecipientError):
        AgeEncryptor(io.BytesIO(), [])


def test_atomic_output_leaves_nothing_when_the_block_fails(tmp_path):
    target = tmp_path / "export.csv"

    def fail_halfway() -> None:
        with atomic_output(target) as out:
            out.write(b"case_id\nSECRET-ROW\n")
            raise RuntimeError("halfway")

    with pytest.raises(RuntimeError, match="halfway"):
        fail_halfway()
    assert os.listdir(tmp_path) == []


def test_atomic_output_turns_a_write_error_into_one_export_error(tmp_path):
    target = tmp_path / "export.csv"
    with pytest.raises(ExportError) as caught, atomic_output(target):
        raise OSError(28, "No space left on device")
    assert str(caught.value) == f"cannot write {target}: No space left on device"
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("where", ["missing folder", "under a file", "a folder"])
def test_atomic_output_refuses_a_path_it_cannot_write(tmp_path, where):
    (tmp_path / "plain-file").write_text("x")
    (tmp_path / "folder").mkdir()
    target = {
        "missing folder": tmp_path / "missing" / "export.csv",
        "under a file": tmp_path / "plain-file" / "export.csv",
        "a folder": tmp_path / "folder",
    }[where]
    with pytest.raises(ExportError) as caught, atomic_output(target):
        pytest.fail("the block must not run")
    assert str(caught.value).startswith(f"cannot write {target}")
    assert len(str(caught.value).splitlines()) == 1
    assert sorted(os.listdir(tmp_path)) == ["folder", "plain-file"]
    assert os.listdir(tmp_path / "folder") == []


def test_atomic_output_writes_a_private_file_only_at_the_end(tmp_path):
    target = tmp_path / "export.csv"
    with atomic_output(target) as out:
        out.write(b"case_id\n")
        assert not target.exists()
        [part] = os.listdir(tmp_path)
        assert part.startswith(".export.csv.")
        assert part.endswith(".part")
    assert target.read_bytes() == b"case_id\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["export.csv"]


# --- the bot's /export: roles, encryption, size, audit ------------------------------------------------

ADMIN, ANALYST, COORDINATOR_ID, REVOKED, STRANGER = 1001, 1002, 1003, 1004, 1005


@pytest.fixture
async def staffed(seeded_conn) -> StaffStore:
    """An admin, an analyst, a coordinator, a revoked admin (and, by omission, a stranger)."""
    staff = StaffStore(seeded_conn)
    await staff.grant(ADMIN, Role.ADMIN, by=None)
    await staff.grant(ANALYST, Role.ANALYST, by=None)
    await staff.grant(COORDINATOR_ID, Role.COORDINATOR, by=None)
    await staff.grant(REVOKED, Role.ADMIN, by=None)
    await staff.revoke(REVOKED, by=ADMIN)
    return staff


def service(
    seeded: Seeded, conn, keyring, staff, recipients=(), max_bytes: int = 50_000_000
) -> tuple[ExportService, list[bool]]:
    """The bot's export service over the test's database; ``opened`` records each snapshot opened."""
    opened: list[bool] = []

    async def open_source(decrypt: bool) -> ExportReader:
        opened.append(decrypt)
        return await ExportReader.open(seeded.path, keyring if decrypt else None)

    async def record(actor_id, details) -> None:
        await record_export(conn, actor_id=actor_id, details=dict(details))

    made = ExportService(
        staff=staff,
        open_source=open_source,
        record=record,
        areas=areas,
        recipients=recipients,
        max_bytes=max_bytes,
    )
    return made, opened


async def exports_audited(conn) -> list:
    return [entry for entry in await audit_entries(conn, limit=1000) if entry.action == "export"]


@pytest.mark.parametrize(
    ("user", "allowed"),
    [
        (ADMIN, set(ExportLevel)),
        (ANALYST, {ExportLevel.PARTNER, ExportLevel.PUBLIC}),
        (COORDINATOR_ID, set()),
        (REVOKED, set()),
        (STRANGER, set()),
    ],
)
async def test_export_service_checks_the_role_for_each_level(
    seeded, seeded_conn, keyring, staffed, user, allowed
):
    identity = pyrage.x25519.Identity.generate()
    bot, opened = service(seeded, seeded_conn, keyring, staffed, recipients=[identity.to_public()])
    assert set(await bot.levels_for(user)) == allowed
    for level in ExportLevel:
        request = ExportRequest(level, ExportFormat.CSV)
        if level in allowed:
            made = await bot.export(user, request)
            assert made.summary.level is level
        else:
            with pytest.raises(PermissionError):
                await bot.export(user, request)
    # A refused export opens no snapshot and writes no export entry.
    assert len(opened) == len(allowed)
    assert len(await exports_audited(seeded_conn)) == len(allowed)


async def test_the_full_level_needs_recipients(seeded, seeded_conn, keyring, staffed):
    bot, opened = service(seeded, seeded_conn, keyring, staffed)
    assert not bot.can_encrypt
    with pytest.raises(NeedsEncryption):
        await bot.export(ADMIN, ExportRequest(ExportLevel.FULL, ExportFormat.JSONL))
    assert opened == []
    assert await exports_audited(seeded_conn) == []


async def test_a_full_export_is_encrypted_named_and_audited(seeded, seeded_conn, keyring, staffed):
    identity = pyrage.x25519.Identity.generate()
    bot, opened = service(seeded, seeded_conn, keyring, staffed, recipients=[identity.to_public()])
    made = await bot.export(
        ADMIN, ExportRequest(ExportLevel.FULL, ExportFormat.JSONL, filters=parse_filters(status=["new"]))
    )
    assert opened == [True]
    assert made.encrypted
    assert made.name.startswith("beacon-full-")
    assert made.name.endswith(".jsonl.age")
    assert b"MARK" not in made.content
    plaintext = pyrage.decrypt(made.content, [identity])
    assert {record["case_id"] for record in jsonl(plaintext)} == set(seeded.every)
    assert all(marker.encode() in plaintext for marker in seeded.full_markers)
    [entry] = await exports_audited(seeded_conn)
    assert entry.actor_id == ADMIN
    assert entry.case_id is None
    assert entry.details["via"] == "telegram"
    assert entry.details["level"] == "full"
    assert entry.details["format"] == "jsonl"
    assert entry.details["rows"] == 17
    assert entry.details["encrypted"] is True
    assert entry.details["filter_status"] == "new"
    assert (await verify_audit(seeded_conn)).intact


async def test_a_public_export_from_the_bot_is_plain_and_audited(seeded, seeded_conn, keyring, staffed):
    bot, opened = service(seeded, seeded_conn, keyring, staffed)
    made = await bot.export(ANALYST, ExportRequest(ExportLevel.PUBLIC, ExportFormat.CSV))
    assert opened == [False]
    assert not made.encrypted
    assert made.name.endswith(".csv")
    assert made.content.startswith(b"registrationPeriod,")
    [entry] = await exports_audited(seeded_conn)
    assert (entry.actor_id, entry.details["level"], entry.details["encrypted"]) == (ANALYST, "public", False)
    assert entry.details["rows"] + entry.details["suppressed"] == 15
    assert entry.details["k"] == K


@pytest.mark.parametrize("level", [ExportLevel.PARTNER, ExportLevel.FULL])
async def test_an_export_past_the_cap_is_too_large_and_not_audited(
    seeded, seeded_conn, keyring, staffed, level
):
    """Over the cap the export fails with ExportTooLarge, encrypted or not; it is never handed over cut
    short, and not audited. (Small encrypted files are written in one piece when finished.)"""
    identity = pyrage.x25519.Identity.generate()
    request = ExportRequest(level, ExportFormat.JSONL)
    capped, _ = service(
        seeded, seeded_conn, keyring, staffed, recipients=[identity.to_public()], max_bytes=200
    )
    with pytest.raises(ExportTooLarge):
        await capped.export(ADMIN, request)
    assert await exports_audited(seeded_conn) == []
    roomy, _ = service(
        seeded, seeded_conn, keyring, staffed, recipients=[identity.to_public()], max_bytes=10**6
    )
    made = await roomy.export(ADMIN, request)
    content = pyrage.decrypt(made.content, [identity]) if made.encrypted else made.content
    assert len(jsonl(content)) == made.summary.rows


class FailingSink(io.RawIOBase):
    """A destination that refuses every byte past ``limit`` (a full disk)."""

    def __init__(self, limit: int) -> None:
        self.kept = bytearray()
        self.limit = limit

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(self.kept) + len(data) > self.limit:
            raise OSError(28, "No space left on device")
        self.kept += data
        return len(data)


def encrypt_into(destination, data: bytes) -> None:
    """Age-encrypt ``data`` into ``destination`` the way exports do (buffered writes, then close)."""
    encryptor = AgeEncryptor(destination, [pyrage.x25519.Identity.generate().to_public()])
    out = io.BufferedWriter(encryptor)
    try:
        out.write(data)
        out.flush()
    finally:
        encryptor.close()


@pytest.mark.parametrize("size", [100, 300_000])
def test_age_encryption_reports_a_failing_destination_even_at_the_last_write(size):
    """pyrage writes a small file in one piece when it finishes, and drops an error there: the encryptor
    must still raise it, and keep the size cap's own error."""
    with pytest.raises(ExportError, match="No space left on device"):
        encrypt_into(FailingSink(limit=size // 2), b"x" * size)
    with pytest.raises(ExportTooLarge):
        encrypt_into(CappedBuffer(size // 2), b"x" * size)
    complete = CappedBuffer(size + 1000)
    encrypt_into(complete, b"x" * size)
    assert len(complete.getvalue()) > size
