"""After a complete report, neither the database files nor the logs hold who reported or what they wrote."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import configure_logging, stop_application
from handlers.intake.draft import Step
from tests.e2e.conftest import Harness
from tests.e2e.intake_flow import Plan, Walk, case_by_receipt, new_reporter

FIRST_NAME = "Zorabelle"
LAST_NAME = "Quintavius"
USERNAME = "zq_probe_handle"
USER_ID = 7_391_045_628
MARKER = "MARKER-7f3a"
PLACE_MARKER = "MARKER-PLACE-91"
NAME_MARKER = "MARKER-NAME-55"
ADD_MARKER = "MARKER-ADD-4c"


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Log at DEBUG from before the bot starts, configured as `beacon run` does, restored afterwards."""
    names = ["", "httpx", "httpcore", "telegram", "aiosqlite", "apscheduler", "tornado.access"]
    levels = {name: logging.getLogger(name).level for name in names}
    caplog.set_level(logging.DEBUG)
    configure_logging("DEBUG")
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _files(database: Path) -> dict[str, bytes]:
    found = {}
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        if path.exists():
            found[path.name] = path.read_bytes()
    return found


async def test_no_identity_or_words_in_clear_in_database_or_logs(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """The user id, username, names and every marker typed are absent, in clear, from the database,
    its WAL and shared memory, and from everything logged at DEBUG."""
    h = harness
    r = await new_reporter(h, "en", FIRST_NAME, last_name=LAST_NAME, username=USERNAME, user_id=USER_ID)
    plan = Plan(
        reporter_type="relative",
        victim=True,
        victim_name=f"{NAME_MARKER} Nguyen",
        victim_handle=f"@{USERNAME}_sister",
        place_text=f"{PLACE_MARKER} behind the casino",
        conditions=("locked_in", "violence"),
        details=(f"{MARKER}: my sister is held here, they took her phone",),
        photos=1,
        voices=1,
        contact="yes",
    )
    receipt = await Walk(r, plan).report()
    case = await case_by_receipt(h, receipt["text"])
    assert MARKER in (case.report.details or ""), "the markers were stored (encrypted)"
    assert case.contact_chat_id == USER_ID

    # Follow-ups write too: /status, and /add with another marker.
    await r.send("/status")
    await r.send("/add")
    await r.send(f"{ADD_MARKER} they were moved")
    mark = await r.last_id()
    await r.press(Step.ADD.value, "done", expect_next=False)
    await r.reply_after(mark, lambda m: m.get("text") == "Thank you. It was added to your report.")

    live = _files(Path(h.settings.database))  # while the bot runs, with its WAL
    await stop_application(h.app)
    stopped = _files(Path(h.settings.database))
    assert live
    assert stopped

    needles = [str(USER_ID), USERNAME, FIRST_NAME, LAST_NAME, MARKER, PLACE_MARKER, NAME_MARKER, ADD_MARKER]
    logs = "\n".join(
        [record.getMessage() for record in caplog.records]
        + [record.exc_text or "" for record in caplog.records]
        + [caplog.text]
    ).encode()
    assert caplog.records, "something was logged"
    sources = {**{f"live {k}": v for k, v in live.items()}, **stopped, "logs": logs}
    leaks = [
        f"{needle!r} in {name}"
        for needle in needles
        for name, data in sources.items()
        if needle.encode() in data or needle.lower().encode() in data.lower()
    ]
    assert leaks == []
