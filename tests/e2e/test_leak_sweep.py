"""A leak sweep over one whole lifecycle with planted markers.

A reporter with a marked Telegram identity (id, username, names, language, a shared contact's phone)
files a report whose every free-text field, a photo caption and the photo's EXIF carry content markers;
coordinators claim it, note it, reply to it and read its details; it is exported through /export and
`beacon export` at every level and format, backed up with `beacon backup`, closed and purged with
`beacon purge`. Then the raw bytes of the database, its WAL and shared memory, the backup, every export,
the logs (DEBUG) and the coordinators' transcripts in the sandbox are searched for every marker in its
common encodings. Identity markers must be nowhere; content markers never in logs, never in clear in the
database or the backup, and in exports only at the levels that carry free text.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import signal
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyrage
import pytest
from PIL import Image

from bot import cli
from bot.app import configure_logging, stop_application
from bot.domain.export import ExportFormat, ExportLevel
from bot.keys import generate_secret_key
from bot.ops import purge
from handlers.intake.draft import Step
from sandbox.client import SandboxClient
from tests.e2e.casework_flow import (
    DONE,
    SENT_PRIVATELY,
    press,
    quick,
    say,
    settled,
    the_card,
    thread_of,
)
from tests.e2e.conftest import Harness, make_token, restart_bot
from tests.e2e.intake_flow import CODE, Plan, Walk, add_information, case_by_receipt, new_reporter
from tests.e2e.reporter import Reporter
from tests.e2e.test_alert_delivery import delivered
from tests.e2e.test_processes import URL_LINE, _read_until, _spawn, _stop

JSON = dict[str, Any]

# --- the planted markers -----------------------------------------------------------------------------
# Who reported: Telegram shows the bot these; Beacon must keep none of them anywhere.
USER_ID = 7_318_204_659  # above 2**32: SQLite would store it in 6 bytes
USERNAME = "qzv_probe_reporter"
FIRST_NAME = "Quorválde"  # not ASCII: JSON escapes it, UTF-16 differs
LAST_NAME = "Brisketön"
LANGUAGE = "en-x-qzvlang"  # a private-use tag: answered in English, never stored as given
PHONE = "+855977413309"
CONTACT_NAME = "Qzvcontactperson"
IDENTITY = {
    "user id": str(USER_ID),
    "username": USERNAME,
    "first name": FIRST_NAME,
    "last name": LAST_NAME,
    "language tag": "qzvlang",
    "phone": PHONE.removeprefix("+"),
    "phone (local)": PHONE.removeprefix("+855"),
    "contact name": CONTACT_NAME,
}
# What they wrote: stored only encrypted, shown to coordinators only privately, exported at `full` only.
VICTIM_NAME = "Qzvnamé-7194 Nguyen"
PASSPORT = "QZVPASS7195"
HANDLE = "@qzv_victim_7196"
PLACE = "QZV-PLACE-7197 behind the casino"
DETAILS = "QZV-DETAIL-7198 they took our phones"
CAPTION = "QZV-CAPTION-7199 the gate"
EXIF_TEXT = "QZV-EXIF-7200"
ADDITION = "QZV-ADD-7201 moved to block C"
NATIONALITY = "Qzvnation-7205 from the hills"
NOTE = "QZV-NOTE-7202 police contact"
RELAY = "QZV-RELAY-7203 we are coming"
CARD_REPLY = "QZV-CARDREPLY-7204 stay calm"
# The part of each that must not leave as written (a phrase around it may be reworded).
CONTENT = {
    "victim name": "Qzvnamé-7194",
    "passport": PASSPORT,
    "victim handle": HANDLE.removeprefix("@"),
    "place": "QZV-PLACE-7197",
    "details": "QZV-DETAIL-7198",
    "caption": "QZV-CAPTION-7199",
    "exif": EXIF_TEXT,
    "addition": "QZV-ADD-7201",
    "note": "QZV-NOTE-7202",
    "relay": "QZV-RELAY-7203",
    "card reply": "QZV-CARDREPLY-7204",
    "typed nationality": "Qzvnation-7205",
}
# What a full export carries (the reporter's words, the team's notes); relayed messages are sent, not kept,
# and EXIF never survives the re-encoding of a photo.
IN_FULL_EXPORT = {
    "victim name",
    "passport",
    "victim handle",
    "place",
    "details",
    "caption",
    "typed nationality",  # a typed nationality that names no country is kept with the details
    "addition",
    "note",
}


# --- scanning ----------------------------------------------------------------------------------------


def _base64_cores(data: bytes) -> dict[str, bytes]:
    """The base64 text of `data` wherever it starts in a stream: one core per alignment, without the
    characters that also depend on neighbouring bytes."""
    cores = {}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data)
        start, end = -(-8 * shift // 6), 8 * (shift + len(data)) // 6
        cores[f"base64/{shift}"] = encoded[start:end]
        cores[f"base64url/{shift}"] = encoded[start:end].replace(b"+", b"-").replace(b"/", b"_")
    return cores


def encodings(marker: str) -> dict[str, bytes]:
    """The forms a string takes in files and logs: UTF-8, UTF-16 (both orders), JSON-escaped (ASCII-only
    JSON too), URL-encoded, and base64 at every alignment."""
    raw = marker.encode()
    forms = {
        "utf-8": raw,
        "utf-16-le": marker.encode("utf-16-le"),
        "utf-16-be": marker.encode("utf-16-be"),
        "json": json.dumps(marker)[1:-1].encode(),
        "url": quote(marker).encode(),
        **_base64_cores(raw),
    }
    return {name: form for name, form in forms.items() if len(form) >= 6}


def identity_needles() -> dict[str, bytes]:
    needles = {
        f"{name} ({form})": data
        for name, value in IDENTITY.items()
        for form, data in encodings(value).items()
    }
    # SQLite keeps an integer in the fewest big-endian bytes it fits (6 here); other stores use 8 bytes.
    needles["user id (6-byte big-endian)"] = USER_ID.to_bytes(6, "big")
    needles["user id (int64 big-endian)"] = USER_ID.to_bytes(8, "big")
    needles["user id (int64 little-endian)"] = USER_ID.to_bytes(8, "little")
    return needles


def content_needles(names: set[str] | None = None) -> dict[str, bytes]:
    return {
        f"{name} ({form})": data
        for name, value in CONTENT.items()
        if names is None or name in names
        for form, data in encodings(value).items()
    }


def found(needles: dict[str, bytes], sources: dict[str, bytes]) -> list[str]:
    """Every (needle, source) pair where the needle occurs, case-insensitively."""
    lowered = {name: data.lower() for name, data in sources.items()}
    return [
        f"{needle} in {source}"
        for needle, data in needles.items()
        for source, blob in lowered.items()
        if data.lower() in blob
    ]


def database_files(database: Path, label: str) -> dict[str, bytes]:
    files = {}
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = Path(f"{database}{suffix}")
        if path.exists():
            files[f"{label} {path.name}"] = path.read_bytes()
    return files


def readable(name: str, data: bytes, identity: pyrage.x25519.Identity) -> bytes:
    """An export's bytes as its reader sees them: age decrypted, XLSX unzipped (each part in turn)."""
    if name.endswith(".age"):
        data = pyrage.decrypt(data, [identity])
        name = name.removesuffix(".age")
    if name.endswith(".xlsx"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return b"\n".join(archive.read(member) for member in archive.namelist())
    return data


def photo_with_exif() -> bytes:
    """A JPEG whose EXIF names the photographer (the reporter) and describes the picture (a marker)."""
    image = Image.new("RGB", (96, 64), (70, 110, 160))
    exif = Image.Exif()
    exif[0x010E] = EXIF_TEXT  # ImageDescription
    exif[0x013B] = f"{FIRST_NAME} {LAST_NAME}"  # Artist
    exif[0x8298] = USERNAME  # Copyright
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    data = out.getvalue()
    assert EXIF_TEXT.encode() in data
    assert USERNAME.encode() in data
    return data


# --- the lifecycle -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exif_photo() -> bytes:
    """Made before any test's logs are captured: Pillow logs the tags it writes at DEBUG."""
    return photo_with_exif()


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Log at DEBUG from before the bot starts, configured as `beacon run` does, restored afterwards."""
    names = ["", "httpx", "httpcore", "telegram", "aiosqlite", "apscheduler", "tornado.access", "PIL"]
    levels = {name: logging.getLogger(name).level for name in names}
    caplog.set_level(logging.DEBUG)
    configure_logging("DEBUG")
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@dataclass
class Sweep:
    """Everything the lifecycle wrote that the scan reads."""

    exports: dict[str, bytes]  # name → the bytes as their reader sees them
    files: dict[str, bytes]  # database files (live, mid-flow, stopped, purged) and the backup
    transcripts: dict[str, bytes]  # what coordinators and the group saw, as JSON, and files sent to them
    group_bot_texts: str  # the bot's own words in the coordinators' group


MARKED = Plan(
    reporter_type="relative",
    victim=True,
    victim_name=VICTIM_NAME,
    victim_passport=PASSPORT,
    victim_handle=HANDLE,
    victim_photo=False,
    place_text=PLACE,
    conditions=("locked_in", "violence"),
    details=(),
    contact="yes",
)


async def _marked_report(
    r: Reporter, photo: bytes, before_sending: Callable[[], None] = lambda: None
) -> JSON:
    """The marked reporter answers every question, writes the details, sends the captioned EXIF photo and
    shares a contact (refused), then sends the report; `before_sending` runs just before. Returns the
    receipt message."""
    walk = Walk(r, MARKED)
    await walk.begin()
    await walk.until(Step.NATIONALITIES)
    assert (await r.send(NATIONALITY))["text"] == "Noted. Send more, or press Done."  # no button fits
    await walk.answer(Step.NATIONALITIES)
    assert (await r.send(DETAILS))["text"] == "Noted. Send more, or press Done."
    noted = await r.sb.send_photo(r.user_id, content=photo, caption=CAPTION, bot_id=r.bot_id)
    reply = await r.reply_after(noted["message"]["message_id"])
    assert reply["text"] == "Noted. Send more, or press Done."
    shared = await r.sb.send_contact(r.user_id, PHONE, CONTACT_NAME, bot_id=r.bot_id)
    reply = await r.reply_after(shared["message"]["message_id"])
    assert reply["text"] == "Thank you, but we do not need a phone number. It was not saved."
    before_sending()
    await walk.answer(Step.DETAILS)  # Done
    await walk.to_review(Step.CONTACT)
    receipt = await walk.submit()
    assert CODE.search(receipt["text"])
    return receipt


async def _report(h: Harness, photo: bytes) -> tuple[Reporter, str, dict[str, bytes]]:
    """The marked reporter files the report and adds to it; return them, the case id and the database
    files as they were mid-flow (the draft written through, not yet sent)."""
    r = await new_reporter(h, LANGUAGE, FIRST_NAME, last_name=LAST_NAME, username=USERNAME, user_id=USER_ID)
    mid_flow: dict[str, bytes] = {}
    receipt = await _marked_report(
        r, photo, lambda: mid_flow.update(database_files(Path(h.settings.database), "mid-flow"))
    )
    case = await case_by_receipt(h, receipt["text"])
    assert case.report.victim.name == VICTIM_NAME
    assert case.media_count == 1
    await add_information(r, ADDITION)
    return r, case.case_id, mid_flow


async def _casework(h: Harness, r: Reporter, case_id: str) -> None:
    """The admin claims the case, notes it, answers the reporter twice, reads its details, its card and
    its notes."""
    admin = h.coordinator_id
    await delivered(h, case_id, count=2)
    await settled(h, case_id)
    await say(h, admin, "/help", private=True)
    assert (await press(h, admin, case_id, f"w:claim:{case_id}"))["text"] == DONE
    assert (await say(h, admin, f"/note {case_id} {NOTE}"))["text"] == "Note added."
    assert (await say(h, admin, f"/reply {case_id} {RELAY}"))["text"] == "Sent to the reporter."
    card = await the_card(h, case_id)
    reply = await say(
        h, admin, CARD_REPLY, thread_id=await thread_of(h, case_id), reply_to=card["message_id"]
    )
    assert reply["text"] == "Sent to the reporter."
    relayed = [m.get("text", "") for m in await r.bot_messages()]
    assert f"Message from the team:\n\n{RELAY}" in relayed
    assert f"Message from the team:\n\n{CARD_REPLY}" in relayed
    assert (await press(h, admin, case_id, f"w:details:{case_id}"))["text"] == SENT_PRIVATELY
    details = await h.sb.wait_for_message(
        admin, bot_id=h.bot_id, predicate=lambda m: str(m.get("text", "")).startswith("Details of case")
    )
    for value in (VICTIM_NAME, PASSPORT, HANDLE, PLACE, DETAILS, CAPTION, NATIONALITY, ADDITION):
        assert value in details["text"], f"{value!r} missing from the details"
    await h.sb.wait_for_message(admin, bot_id=h.bot_id, predicate=lambda m: "photo" in m)
    assert case_id in (await say(h, admin, f"/case {case_id}"))["text"]
    assert NOTE in (await say(h, admin, f"/notes {case_id}"))["text"]
    await settled(h, case_id)


async def _telegram_exports(h: Harness, identity: pyrage.x25519.Identity) -> dict[str, bytes]:
    """/export privately by the admin: every format at every level (full only age-encrypted)."""
    exports = {}
    for level in ExportLevel:
        for fmt in ExportFormat:
            sent = await h.sb.send_text(
                h.coordinator_id, f"/export {fmt.value} {level.value}", bot_id=h.bot_id
            )
            message = await h.sb.wait_for_message(
                h.coordinator_id,
                bot_id=h.bot_id,
                after_message_id=sent["message"]["message_id"],
                predicate=lambda m: "document" in m,
                timeout=20,
            )
            name = message["document"]["file_name"]
            assert name.endswith(".age") == (level is ExportLevel.FULL), name
            data = await h.sb.file_bytes(message["document"]["file_id"])
            exports[f"/export {fmt.value} {level.value}"] = readable(name, data, identity)
    return exports


async def _command_line_exports(
    h: Harness, tmp_path: Path, identity: pyrage.x25519.Identity
) -> dict[str, bytes]:
    """`beacon export` (the real command line, in a thread): every format at every level, CSV also with
    HXL and a BOM, the full level in plain text and age-encrypted."""
    folder = tmp_path / "exports"
    folder.mkdir()
    runs: list[tuple[str, list[str]]] = []
    for level in ExportLevel:
        for fmt in ExportFormat:
            options = ["--plaintext"] if level is ExportLevel.FULL else []
            runs.append(
                (f"{level.value}.{fmt.value}", ["--level", level.value, "--format", fmt.value, *options])
            )
        runs.append((f"{level.value}-hxl-bom.csv", ["--level", level.value, "--hxl", "--bom", "--plaintext"]))
    runs.append(
        (
            "full.jsonl.age",
            ["--level", "full", "--format", "jsonl", "--encrypt-to", str(identity.to_public())],
        )
    )
    exports = {}
    for name, options in runs:
        target = folder / name
        status = await asyncio.to_thread(cli.main, ["export", *options, "--output", str(target)])
        assert status == 0, name
        exports[f"beacon export {name}"] = readable(name, target.read_bytes(), identity)
    return exports


async def _transcripts(h: Harness) -> tuple[dict[str, bytes], str]:
    """What the coordinators' group and the admin's private chat hold, as the sandbox would show them,
    with every file the bot sent there; and the bot's own words in the group."""
    sources: dict[str, bytes] = {}
    group = await h.sb.transcript(h.group_id)
    admin = await h.sb.transcript(h.coordinator_id, bot_id=h.bot_id)
    for name, transcript in (("group transcript", group), ("admin's private transcript", admin)):
        sources[name] = json.dumps(transcript, ensure_ascii=False).encode()
        sources[f"{name} (ASCII JSON)"] = json.dumps(transcript).encode()
        for message in transcript["messages"]:
            if not message["from"]["is_bot"]:
                continue
            files = [size["file_id"] for size in message.get("photo", [])]
            files += [message[kind]["file_id"] for kind in ("voice", "audio", "document") if kind in message]
            for file_id in files:
                sources[f"{name}: file {file_id}"] = await h.sb.file_bytes(file_id)
    bot_texts = "\n".join(
        str(m.get("text") or m.get("caption") or "") for m in group["messages"] if m["from"]["is_bot"]
    )
    return sources, bot_texts


async def test_a_whole_lifecycle_leaves_no_identity_anywhere_and_words_only_where_allowed(
    harness: Harness,
    exif_photo: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Identity markers (id in text and binary forms, username, names, language tag, the phone and name
    of a shared contact, the photo's EXIF author) are in no database file at any point, no backup, no
    export, no log line, no coordinators' message or file. Content markers are in no log, not in clear
    in the database or the backup; full exports carry the stored words, partner, public and GeoJSON
    exports none; EXIF and relayed replies reach no export; after the purge the words are gone."""
    h = harness
    identity = pyrage.x25519.Identity.generate()
    h.settings = h.settings.model_copy(update={"export_recipients": [str(identity.to_public())]})
    await restart_bot(h)
    await quick(h)
    database = Path(h.settings.database)
    for name, value in {
        "BEACON_BOT_TOKEN": h.settings.bot_token.get_secret_value(),
        "BEACON_SECRET_KEY": h.settings.secret_key.get_secret_value(),
        "BEACON_DATABASE": str(database),
        "BEACON_LOG_LEVEL": "DEBUG",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)

    r, case_id, mid_flow = await _report(h, exif_photo)
    await _casework(h, r, case_id)
    exports = await _telegram_exports(h, identity)
    exports |= await _command_line_exports(h, tmp_path, identity)
    backup = tmp_path / "beacon-backup.db"
    assert await asyncio.to_thread(cli.main, ["backup", str(backup)]) == 0
    live = database_files(database, "live")
    transcripts, group_bot_texts = await _transcripts(h)

    # Closed, the bot stopped, then purged as `beacon purge` does, two days on.
    await press(h, h.coordinator_id, case_id, f"w:close:{case_id}")
    assert (await press(h, h.coordinator_id, case_id, f"w:reason:{case_id}:rescued"))["text"] == DONE
    await settled(h, case_id)
    await stop_application(h.app)
    stopped = database_files(database, "stopped")
    later = datetime.now(UTC) + timedelta(days=2)
    result = await purge(h.settings, 1, clock=lambda: later)
    assert (result.cases, result.checkpointed) == (1, True)
    purged = database_files(database, "purged")
    files = {**mid_flow, **live, **stopped, **purged, "backup": backup.read_bytes()}
    captured = capfd.readouterr()
    logs = "\n".join(
        [caplog.text, captured.out, captured.err]
        + [record.getMessage() for record in caplog.records]
        + [record.exc_text or "" for record in caplog.records]
    ).encode()
    assert caplog.records, "the bot logged at DEBUG"
    assert case_id.encode() in logs, "logs name cases by their ids"

    # The scan finds what it looks for: the full exports hold every stored word, in each format it shows.
    full_tabular = {name: data for name, data in exports.items() if "full" in name and "geojson" not in name}
    assert len(full_tabular) == 8  # 3 by /export, 5 by beacon export
    for name, data in full_tabular.items():
        for key in IN_FULL_EXPORT:
            assert CONTENT[key].encode() in data or json.dumps(CONTENT[key])[1:-1].encode() in data, (
                f"{key} missing from {name}"
            )

    everywhere = {**files, **exports, **transcripts, "logs": logs}
    assert found(identity_needles(), everywhere) == []
    not_in_full = set(CONTENT) - IN_FULL_EXPORT
    below_full = {name: data for name, data in exports.items() if "full" not in name or "geojson" in name}
    assert found(content_needles(), {**files, "logs": logs, **below_full}) == []
    assert found(content_needles(not_in_full), full_tabular) == []
    # The reporter's words reach coordinators only privately (details): the bot's cards, notices and
    # answers in the group hold none. (The team's own notes and replies were typed in the group.)
    reporters_words = set(CONTENT) - {"note", "relay", "card reply"}
    in_group = {"the bot's words in the group": group_bot_texts.encode()}
    assert found(content_needles(reporters_words), in_group) == []


# --- a `beacon run` process -------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_beacon_run_process_logging_at_debug_writes_no_identity_or_words(
    exif_photo: bytes, tmp_path: Path
) -> None:
    """`beacon run` with BEACON_LOG_LEVEL=DEBUG, as a deployer would run it, takes the marked report
    (EXIF photo, caption, shared contact): its standard output and error, and its database files, hold
    no identity marker and no content marker."""
    token = make_token()
    sandbox = await _spawn("sandbox", "--port", "0", "--token", token)
    bot: asyncio.subprocess.Process | None = None
    try:
        url = await _read_until(sandbox, URL_LINE)
        env = {
            "BEACON_BOT_TOKEN": token,
            "BEACON_API_URL": url,
            "BEACON_DATABASE": str(tmp_path / "beacon.db"),
            "BEACON_SECRET_KEY": generate_secret_key(),
            "BEACON_LOG_LEVEL": "DEBUG",
        }
        bot = await _spawn("run", env=env, cwd=tmp_path)
        async with SandboxClient(url) as sb:
            await sb.set_limits(enabled=False)
            user = await sb.create_user(
                FIRST_NAME, last_name=LAST_NAME, username=USERNAME, language_code=LANGUAGE, user_id=USER_ID
            )
            await _marked_report(Reporter(sb, int(token.split(":")[0]), user["id"]), exif_photo)
        assert await _stop(bot, signal.SIGTERM) == 0
        assert bot.stdout is not None
        output = await bot.stdout.read()
    finally:
        if bot is not None and bot.returncode is None:
            bot.kill()
            await bot.wait()
        assert await _stop(sandbox) == 0
    assert b"submitted" in output, "the process logged the submission (by case id)"
    files = database_files(tmp_path / "beacon.db", "run")
    assert found({**identity_needles(), **content_needles()}, {"beacon run output": output}) == []
    assert found(identity_needles(), files) == []
    assert found(content_needles(), files) == []
