"""`beacon export`: one summary line and a private file on success; on bad input one error line, a non-zero
exit status and no file left behind; age encryption; the area list; the audit entry."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import openpyxl
import pyrage
import pytest

from bot.cli import main
from bot.crypto import Keyring
from bot.domain.gazetteer import load_gazetteer
from bot.domain.models import Place, Report
from bot.keys import decode_secret_key
from storage.audit import audit_entries, verify_audit
from storage.cases import CaseStore
from storage.db import open_database
from storage.migrations import migrate
from tests.storage.factories import make_case, rich_report
from tests.unit.conftest import VALID_KEY, VALID_TOKEN

REPO = Path(__file__).resolve().parents[2]
OTHER_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # base64 of bytes 0..31
CHAT_ID = 9_876_543_210


async def plant(database: Path) -> list[str]:
    """Three active cases (two in Sihanoukville, one in Myawaddy) and a withdrawn one."""
    conn = await open_database(database)
    try:
        await migrate(conn)
        keyring = Keyring(decode_secret_key(VALID_KEY))
        store = CaseStore(conn, keyring)
        made = []
        reports = [
            rich_report("CLIMARK1"),
            rich_report("CLIMARK2"),
            Report(place=Place(country="MM", area_id="mm-myawaddy"), details="CLIMARK3"),
            rich_report("CLIMARK4"),
        ]
        for report in reports:
            new, _ = make_case(keyring, report=report, chat_id=CHAT_ID)
            await store.create_case(new)
            made.append(new.case_id)
        await store.withdraw(made[-1], update_id=None)
        return made
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The planted database, written once (each case is a synced transaction) and copied per test."""
    database = tmp_path_factory.mktemp("template") / "beacon.db"
    asyncio.run(plant(database))
    return database


@pytest.fixture
def env(monkeypatch, tmp_path, template) -> Path:
    """BEACON_* variables for a copy of the planted database (no .env); returns the database path."""
    database = tmp_path / "db" / "beacon.db"
    database.parent.mkdir()
    shutil.copyfile(template, database)
    monkeypatch.setenv("BEACON_BOT_TOKEN", VALID_TOKEN)
    monkeypatch.setenv("BEACON_SECRET_KEY", VALID_KEY)
    monkeypatch.setenv("BEACON_DATABASE", str(database))
    monkeypatch.setenv("BEACON_COORDINATOR_CHAT_ID", "-1001234567890")
    return database


def export_entries(database: Path) -> list:
    async def read() -> list:
        conn = await open_database(database)
        try:
            assert (await verify_audit(conn)).intact
            return [entry for entry in await audit_entries(conn, limit=1000) if entry.action == "export"]
        finally:
            await conn.close()

    return asyncio.run(read())


def leftovers(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name != "db") if folder.exists() else []


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("beacon: error: "), captured.err
    assert "Traceback" not in captured.err
    return captured.err


def test_export_writes_a_private_file_and_says_how_many_cases(env, tmp_path, capsys):
    out = tmp_path / "partner.csv"
    assert main(["export", "--level", "partner", "--format", "csv", "--output", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("exported 3 cases (level partner, csv) to ")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    header, *rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert header[0] == "case_id"
    assert len(rows) == 3
    assert "CLIMARK" not in out.read_text(encoding="utf-8")
    assert leftovers(tmp_path) == ["partner.csv"]


def test_export_is_audited_as_from_the_command_line(env, tmp_path, capsys):
    out = tmp_path / "p1.jsonl"
    argv = [
        "export",
        "-f",
        "jsonl",
        "-l",
        "partner",
        "-o",
        str(out),
        "--priority",
        "P1",
        "--area",
        "KH-Poipet",
    ]
    assert main(argv) == 0
    assert capsys.readouterr().err.startswith("exported 0 cases")
    assert main(["export", "-f", "jsonl", "-o", str(out), "--country", "mm"]) == 0
    assert capsys.readouterr().err.startswith("exported 1 case (level partner, jsonl)")
    latest, earlier = export_entries(env)[:2]
    assert earlier.actor_id is None
    assert earlier.details["via"] == "command_line"
    assert earlier.details["level"] == "partner"
    assert earlier.details["rows"] == 0
    assert earlier.details["filter_priority"] == "1"
    assert earlier.details["filter_area"] == "kh-poipet"
    assert earlier.details["encrypted"] is False
    assert (latest.details["rows"], latest.details["filter_country"]) == (1, "MM")
    assert len(json.loads(out.read_text().splitlines()[0])) > 1


def test_full_export_to_an_age_recipient_decrypts_with_the_identity(env, tmp_path, capsys):
    identity = pyrage.x25519.Identity.generate()
    recipients = tmp_path / "recipients.txt"
    recipients.write_text(f"# analysts\n{identity.to_public()}\n")
    out = tmp_path / "full.jsonl.age"
    assert main(["export", "-l", "full", "-f", "jsonl", "-o", str(out), "--encrypt-to", str(recipients)]) == 0
    assert "age-encrypted" in capsys.readouterr().err
    ciphertext = out.read_bytes()
    assert b"CLIMARK" not in ciphertext
    records = [json.loads(line) for line in pyrage.decrypt(ciphertext, [identity]).decode().splitlines()]
    assert len(records) == 4
    text = json.dumps(records, ensure_ascii=False)
    assert "CLIMARK1-details" in text
    assert str(CHAT_ID) not in text
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert export_entries(env)[0].details["encrypted"] is True


def test_partner_export_encrypted_to_a_recipient_equals_the_plaintext_export(env, tmp_path, capsys):
    identity = pyrage.x25519.Identity.generate()
    plain, sealed = tmp_path / "plain.csv", tmp_path / "sealed.csv.age"
    assert main(["export", "-o", str(plain)]) == 0
    assert main(["export", "-o", str(sealed), "--encrypt-to", str(identity.to_public())]) == 0
    assert pyrage.decrypt(sealed.read_bytes(), [identity]) == plain.read_bytes()


def test_xlsx_streamed_through_encryption_opens_after_decrypting(env, tmp_path, capsys):
    """The zip is written to a pipe it cannot seek in; once decrypted it is a workbook openpyxl reads."""
    identity = pyrage.x25519.Identity.generate()
    sealed = tmp_path / "partner.xlsx.age"
    assert main(["export", "-f", "xlsx", "-o", str(sealed), "--encrypt-to", str(identity.to_public())]) == 0
    book = openpyxl.load_workbook(io.BytesIO(pyrage.decrypt(sealed.read_bytes(), [identity])))
    assert book.sheetnames == ["cases", "columns", "about"]
    header, *rows = list(book["cases"].iter_rows(values_only=True))
    assert header[0] == "case_id"
    assert len(rows) == 3


def test_full_export_in_plaintext_only_when_asked(env, tmp_path, capsys):
    out = tmp_path / "full.csv"
    assert main(["export", "-l", "full", "-o", str(out), "--plaintext"]) == 0
    assert "CLIMARK2-details" in out.read_text(encoding="utf-8")
    assert str(CHAT_ID) not in out.read_text(encoding="utf-8")


def test_public_export_says_how_many_were_suppressed(env, tmp_path, capsys):
    out = tmp_path / "public.csv"
    assert main(["export", "-l", "public", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("exported 0 cases (level public, csv)")
    assert "3 suppressed to keep k=11" in err
    assert main(["export", "-l", "public", "-o", str(out), "--k", "2", "--max-suppression", "0.5"]) == 0
    assert capsys.readouterr().err.startswith("exported 2 cases")


def test_geojson_export_counts_cases(env, tmp_path, capsys):
    out = tmp_path / "hotspots.geojson"
    assert main(["export", "-f", "geojson", "-o", str(out)]) == 0
    assert capsys.readouterr().err.startswith("exported 3 cases (level partner, geojson)")
    collection = json.loads(out.read_text())
    assert sorted(f["properties"]["cases"] for f in collection["features"]) == [1, 2]


def test_export_to_standard_output(env, capsys):
    assert main(["export", "-f", "jsonl", "-o", "-"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 3
    assert "to standard output" in captured.err


def test_list_areas_prints_the_gazetteer_ids(env, capsys):
    assert main(["export", "--list-areas"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = [line.split("\t")[0] for line in lines]
    gazetteer = load_gazetteer(None)
    expected = [area.id for country in gazetteer.countries() for area in gazetteer.areas_in(country.code)]
    assert listed == expected
    assert "kh-preah-sihanouk" in listed
    assert all(line.count("\t") == 1 for line in lines)


BAD_INPUT = {
    "unknown format": (["-f", "pdf"], "unknown format 'pdf'"),
    "unknown level": (["-l", "secret"], "unknown level 'secret'"),
    "unknown status": (["--status", "pending"], "unknown status 'pending'"),
    "unknown priority": (["--priority", "P9"], "unknown priority 'P9'"),
    "unknown area": (["--area", "xx-atlantis"], "unknown area 'xx-atlantis'"),
    "unknown indicator": (["--indicator", "Witchcraft"], "unknown indicator 'Witchcraft'"),
    "bad date": (["--since", "01/02/2026"], "since must be a date"),
    "bad country": (["--country", "Cambodia"], "two-letter"),
    "hxl with xlsx": (["-f", "xlsx", "--hxl"], "--hxl and --bom apply to the csv format only"),
    "full in clear": (["-l", "full"], "--encrypt-to"),
    "missing recipient file": (["--encrypt-to", "no-such-file.txt"], "cannot read recipients file"),
    "bad recipient": (["--encrypt-to", "age1nonsense"], "cannot read recipient"),
    "k too small": (["-l", "public", "--k", "1"], "k must be at least 2"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_error_line_and_no_file(env, tmp_path, capsys, case):
    extra, message = BAD_INPUT[case]
    out = tmp_path / "out" / "export.csv"
    out.parent.mkdir()
    status = main(["export", "-o", str(out), *extra])
    assert status != 0
    assert message in one_error_line(capsys)
    assert leftovers(out.parent) == []
    assert export_entries(env) == []


def test_an_unreadable_recipients_file_is_one_error_line(env, tmp_path, capsys):
    garbage = tmp_path / "recipients.txt"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    out = tmp_path / "out.csv"
    assert main(["export", "-o", str(out), "--encrypt-to", str(garbage)]) != 0
    assert "cannot read recipients file" in one_error_line(capsys)
    assert not out.exists()


def test_missing_output_is_one_error_line(env, tmp_path, capsys):
    assert main(["export", "-f", "csv"]) == 2
    assert "--output" in one_error_line(capsys)
    assert leftovers(tmp_path) == []  # nothing in the working folder either


def test_output_in_a_missing_folder_is_one_error_line_and_no_audit(env, tmp_path, capsys):
    out = tmp_path / "missing" / "export.csv"
    assert main(["export", "-o", str(out)]) == 1
    assert f"cannot write {out}" in one_error_line(capsys)
    assert not out.parent.exists()
    assert export_entries(env) == []


def test_output_that_is_a_folder_is_one_error_line(env, tmp_path, capsys):
    folder = tmp_path / "exports"
    folder.mkdir()
    assert main(["export", "-o", str(folder)]) == 1
    assert "is a folder" in one_error_line(capsys)
    assert os.listdir(folder) == []


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm"])
def test_an_export_is_never_written_over_the_database(env, capsys, suffix):
    """-o pointing at the database (or a file SQLite keeps beside it) is refused: the cases survive."""
    target = Path(f"{env}{suffix}")
    before = env.read_bytes()
    assert main(["export", "-o", str(target)]) == 2
    assert "over the database" in one_error_line(capsys)
    assert env.read_bytes() == before
    assert main(["export", "-o", "-", "-f", "jsonl"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_missing_database_is_one_error_line_and_is_not_created(env, tmp_path, monkeypatch, capsys):
    missing = tmp_path / "elsewhere" / "beacon.db"
    monkeypatch.setenv("BEACON_DATABASE", str(missing))
    out = tmp_path / "export.csv"
    assert main(["export", "-o", str(out)]) == 1
    assert "no database at" in one_error_line(capsys)
    assert not missing.parent.exists()
    assert not out.exists()


def test_unmigrated_database_is_one_error_line(env, tmp_path, monkeypatch, capsys):
    empty = tmp_path / "empty.db"
    empty.touch()
    monkeypatch.setenv("BEACON_DATABASE", str(empty))
    out = tmp_path / "export.csv"
    assert main(["export", "-o", str(out)]) == 1
    one_error_line(capsys)
    assert leftovers(tmp_path) == ["empty.db"]


def test_full_export_with_another_secret_key_is_one_error_line(env, tmp_path, monkeypatch, capsys):
    """The database was written under another BEACON_SECRET_KEY: nothing decrypts, nothing is written."""
    monkeypatch.setenv("BEACON_SECRET_KEY", OTHER_KEY)
    out = tmp_path / "full.csv"
    assert main(["export", "-l", "full", "--plaintext", "-o", str(out)]) == 1
    assert "BEACON_SECRET_KEY" in one_error_line(capsys)
    assert leftovers(tmp_path) == []
    assert export_entries(env) == []


def test_export_without_configuration_is_a_configuration_error(tmp_path, capsys):
    assert main(["export", "-o", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("beacon: configuration error:")
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.slow
def test_beacon_export_runs_as_a_program(env, tmp_path):
    """`python -m bot export` in a subprocess: exit 0, the summary line, the file."""
    out = tmp_path / "public.jsonl"
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        **{name: value for name, value in os.environ.items() if name.startswith("BEACON_")},
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "export",
            "-l",
            "partner",
            "-f",
            "jsonl",
            "-o",
            str(out),
            "--status",
            "new",
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("exported 3 cases (level partner, jsonl)")
    assert result.stdout == ""
    assert len(out.read_text().splitlines()) == 3
    failed = subprocess.run(
        [sys.executable, "-m", "bot", "export", "-f", "pdf", "-o", str(tmp_path / "x.pdf")],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert failed.returncode == 2
    assert failed.stderr == "beacon: error: unknown format 'pdf'; use one of: csv, jsonl, xlsx, geojson\n"
    assert not (tmp_path / "x.pdf").exists()
