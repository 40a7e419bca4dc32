"""Every shipped language, end to end: a reporter whose Telegram client is set to it walks a whole report
through the real bot and the sandbox, then uses /status, /help, /language and /x.

Everything the bot showed is checked: no line of it is English that the catalog translates, each
message is in the language's script, and every message and keyboard is within Telegram's limits. The
report must be committed in that language.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from babel.messages.pofile import read_po

from bot.i18n import (
    LOCALES_DIR,
    SHIPPED_LOCALES,
    SOURCE_LOCALE,
    get_translator,
    native_name,
    negotiate_locale,
    ordered_locales,
)
from handlers.intake.draft import Step
from tests.e2e.conftest import Harness
from tests.e2e.intake_flow import (
    CODE,
    JSON,
    Plan,
    Walk,
    case_by_receipt,
    expected_question,
    new_reporter,
    today_utc,
)
from tests.e2e.reporter import Reporter

# The language_code a Telegram client sends for each shipped locale (IETF tags, as Telegram passes them).
TELEGRAM_CODES: dict[str, str] = {
    "en": "en",
    "km": "km",
    "zh_Hans": "zh-hans",
    "zh_Hant": "zh-hant",
    "vi": "vi",
    "th": "th",
    "my": "my",
    "lo": "lo",
    "id": "id",
    "ms": "ms",
    "fil": "tl",  # older Android and Java clients still say Tagalog's "tl"
    "hi": "hi",
    "bn": "bn",
    "ne": "ne",
    "si": "si",
    "ta": "ta",
    "ur": "ur",
    "ko": "ko",
    "ja": "ja",
    "sw": "sw",
    "am": "am",
}
# Other tags clients send for the same languages.
OTHER_TELEGRAM_CODES: dict[str, str] = {
    "zh-TW": "zh_Hant",
    "zh-HK": "zh_Hant",
    "zh": "zh_Hans",
    "zh-CN": "zh_Hans",
    "fil": "fil",
    "in": "id",
    "vi-VN": "vi",
    "pt-br": "en",  # no catalog: the default
}

# The characters of each locale's script; None for the Latin-script locales, whose script proves nothing.
SCRIPTS: dict[str, re.Pattern[str] | None] = {
    "en": None,
    "vi": None,
    "id": None,
    "ms": None,
    "fil": None,
    "sw": None,
    "km": re.compile("[\u1780-\u17ff]"),
    "th": re.compile("[\u0e00-\u0e7f]"),
    "lo": re.compile("[\u0e80-\u0eff]"),
    "my": re.compile("[\u1000-\u109f]"),
    "hi": re.compile("[\u0900-\u097f]"),
    "ne": re.compile("[\u0900-\u097f]"),
    "bn": re.compile("[\u0980-\u09ff]"),
    "si": re.compile("[\u0d80-\u0dff]"),
    "ta": re.compile("[\u0b80-\u0bff]"),
    "ur": re.compile("[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]"),
    "ko": re.compile("[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]"),
    "ja": re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]"),
    "zh_Hans": re.compile("[\u3400-\u4dbf\u4e00-\u9fff]"),
    "zh_Hant": re.compile("[\u3400-\u4dbf\u4e00-\u9fff]"),
    "am": re.compile("[\u1200-\u137f]"),
}

# Telegram's limits (Bot API): message text, media caption, callback data, inline keyboard size.
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_BUTTONS = 100
MAX_BUTTONS_PER_ROW = 8

# A line of a msgid counts as recognisable English from this many characters (placeholders removed).
MIN_ENGLISH_LINE = 12
PLACEHOLDER = re.compile(r"\{[^{}]*\}")
RECEIPT_PREFIX = "Thank you. It is saved."
HELP_PREFIX = "/start: begin a report"

# Each question asked in the walk below, checked against the wording for the locale and reporter type.
ASKED = (
    Step.DANGER,
    Step.WHO,
    Step.VICTIM_ASK,
    Step.VICTIM_NAME,
    Step.VICTIM_AGE,
    Step.VICTIM_SEX,
    Step.VICTIM_NATIONALITY,
    Step.VICTIM_PASSPORT,
    Step.VICTIM_HANDLE,
    Step.VICTIM_PHOTO,
    Step.VICTIM_LAST_CONTACT,
    Step.WHERE,
    Step.AREA,
    Step.PLACE_DETAILS,
    Step.PASSPORT,
    Step.PHONE,
    Step.CONDITIONS,
    Step.PEOPLE,
    Step.NATIONALITIES,
    Step.DETAILS,
    Step.CONTACT,
)
REPORTER_TYPES = ("self", "relative", "witness")


# ------------------------------------------------------------------------------------------ helpers


@dataclass
class SeeingReporter(Reporter):
    """A reporter who remembers every version of every bot message it was shown (buttons redrawn, taken
    away, messages wiped later): what is checked is what a person saw, not what is left at the end."""

    shown: dict[tuple[int, str], JSON] = field(default_factory=dict)

    def saw(self, message: JSON) -> JSON:
        if (message.get("from") or {}).get("is_bot"):
            content = {key: message.get(key) for key in ("text", "caption", "reply_markup")}
            key = (int(message["message_id"]), json.dumps(content, sort_keys=True, ensure_ascii=False))
            self.shown.setdefault(key, message)
        return message

    async def messages(self) -> list[JSON]:
        transcript = await self.sb.transcript(self.user_id, bot_id=self.bot_id)
        found = list(transcript["messages"])
        for message in found:
            self.saw(message)
        if transcript.get("keyboard"):
            # A reply keyboard (the location button) is shown under the chat, not on a message.
            self.saw({"message_id": 0, "from": {"is_bot": True}, "reply_markup": transcript["keyboard"]})
        return found

    async def _after(self, sent_id: int, predicate: Any = None, timeout: float = 15.0) -> JSON:
        return self.saw(await super()._after(sent_id, predicate, timeout))

    async def question_after(self, step: str, after: int, timeout: float = 15.0) -> JSON:
        return self.saw(await super().question_after(step, after, timeout))


def _forms(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """A msgid or msgstr as its forms (one, or singular and plurals), empty ones left out."""
    if isinstance(value, str):
        return (value,) if value else ()
    return tuple(form for form in value or () if form)


@functools.cache
def english_lines(locale: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Each recognisable English line of the template's msgids, with a pattern finding it in a shown line
    (placeholders match anything). Entries the locale's catalog deliberately keeps as in English (the
    same words in both languages, like "Status: {status}" in Malay) are left out."""
    with (LOCALES_DIR / "beacon.pot").open("rb") as template_file:
        template = read_po(template_file)
    with (LOCALES_DIR / locale / "LC_MESSAGES" / "beacon.po").open("rb") as catalog_file:
        catalog = read_po(catalog_file, locale=locale)
    lines: dict[str, re.Pattern[str]] = {}
    for message in template:
        if not message.id:
            continue
        english = _forms(message.id)
        entry = catalog.get(message.id, message.context)
        if entry is not None and not entry.fuzzy and _forms(entry.string) == english:
            continue
        for msgid in english:
            for line in msgid.splitlines():
                pieces = PLACEHOLDER.split(line.strip())
                if len("".join(pieces).strip()) >= MIN_ENGLISH_LINE:
                    lines[line.strip()] = re.compile(".*?".join(re.escape(piece) for piece in pieces))
    return tuple(lines.items())


def msgid_starting(prefix: str) -> str:
    """The one msgid of the template that starts with `prefix` (for the long messages)."""
    with (LOCALES_DIR / "beacon.pot").open("rb") as template_file:
        ids = [m.id for m in read_po(template_file) if isinstance(m.id, str) and m.id.startswith(prefix)]
    assert len(ids) == 1, ids
    return ids[0]


def _utf16_len(text: str) -> int:
    """Telegram measures text in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _has_letters(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def problems_in(locale: str, shown: list[JSON]) -> list[str]:
    """Everything wrong with the bot messages a reader of `locale` was shown."""
    problems: list[str] = []
    script = SCRIPTS[locale]
    english = english_lines(locale) if locale != SOURCE_LOCALE else ()
    for message in shown:
        text = message.get("text")
        caption = message.get("caption")
        body = str(text or caption or "")
        where = (
            f"message {message['message_id']} {body[:50]!r}" if message["message_id"] else "reply keyboard"
        )
        if text is not None and not 1 <= _utf16_len(text) <= MAX_TEXT:
            problems.append(f"{where}: text of {_utf16_len(text)} characters (1-{MAX_TEXT})")
        if caption is not None and _utf16_len(caption) > MAX_CAPTION:
            problems.append(f"{where}: caption of {_utf16_len(caption)} characters (max {MAX_CAPTION})")
        markup = message.get("reply_markup") or {}
        inline = markup.get("inline_keyboard") or []
        if sum(len(row) for row in inline) > MAX_BUTTONS:
            problems.append(f"{where}: {sum(len(row) for row in inline)} buttons (max {MAX_BUTTONS})")
        labels: list[str] = []
        for row in inline + (markup.get("keyboard") or []):
            if len(row) > MAX_BUTTONS_PER_ROW:
                problems.append(f"{where}: a row of {len(row)} buttons (max {MAX_BUTTONS_PER_ROW})")
            for button in row:
                label = str(button.get("text") or "")
                labels.append(label)
                if not label.strip():
                    problems.append(f"{where}: a button without text ({button})")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
                    problems.append(f"{where}: callback data {data!r} of {len(data.encode())} bytes")
        if script is not None and _has_letters(body) and not script.search(body):
            problems.append(f"{where}: not in the {locale} script")
        for line in [*body.splitlines(), *labels]:
            for msgid_line, pattern in english:
                if pattern.search(line):
                    kind = "button" if line in labels else "line"
                    problems.append(f"{where}: untranslated {kind} {line!r} (msgid line {msgid_line!r})")
    return problems


def _plan(locale: str) -> Plan:
    """A lean whole report: some of the victim's details (no photo), an area, two conditions, no media.
    The reporter type changes from one locale to the next, so that every wording is shown somewhere."""
    reporter_type = REPORTER_TYPES[ordered_locales().index(locale) % len(REPORTER_TYPES)]
    return Plan(
        reporter_type=reporter_type,
        victim=True,
        victim_passport=None,
        victim_handle=None,
        victim_photo=False,
        country="KH",
        area="kh-preah-sihanouk",
        place_text="Golden Fortune compound, building C",
        passport="taken",
        phone="kept",
        conditions=("locked_in", "forced_scamming"),
        people="21-100",
        nationalities=("VN", "MM"),
        details=("About forty people work on floor 5.",),
        contact="yes" if reporter_type == "self" else "on_check_in",
    )


# ------------------------------------------------------------------------------------------ tests


def test_every_shipped_locale_has_a_telegram_code_and_a_script_entry() -> None:
    """The tables above cover exactly the shipped locales, and each code selects its locale."""
    assert set(TELEGRAM_CODES) == set(SHIPPED_LOCALES)
    assert set(SCRIPTS) == set(SHIPPED_LOCALES)
    assert set(ordered_locales()) == set(SHIPPED_LOCALES)
    for locale, code in TELEGRAM_CODES.items():
        assert negotiate_locale(code, SOURCE_LOCALE) == locale, code
    for code, locale in OTHER_TELEGRAM_CODES.items():
        assert negotiate_locale(code, SOURCE_LOCALE) == locale, code


@pytest.mark.parametrize("locale", SHIPPED_LOCALES)
def test_each_language_is_named_in_its_own_script(locale: str) -> None:
    name = native_name(locale)
    script = SCRIPTS[locale]
    assert name.strip()
    assert script is None or script.search(name), f"{locale} is named {name!r}"


@pytest.mark.parametrize("locale", SHIPPED_LOCALES)
async def test_a_whole_report_and_the_commands_in_every_language(harness: Harness, locale: str) -> None:
    """/start to the receipt, then /status with the code, /help, /language and /x, all in `locale`."""
    h = harness
    t = get_translator(locale)
    base = await new_reporter(h, TELEGRAM_CODES[locale])
    r = SeeingReporter(base.sb, base.bot_id, base.user_id)
    plan = _plan(locale)
    problems: list[str] = []

    # The whole report, each question worded for the locale and the reporter type.
    walk = Walk(r, plan)
    await walk.begin()
    await walk.to_review()
    for step in ASKED:
        shown = walk.questions[step.value]["text"]
        if shown != expected_question(step, locale, plan.reporter_type, plan.country):
            problems.append(f"the {step.value} question is not the {locale} one: {shown!r}")
    receipt = await walk.submit()
    match = CODE.search(receipt["text"])
    assert match
    expected_receipt = t.gettext(msgid_starting(RECEIPT_PREFIX)).format(code=" ".join(match.groups()))
    assert receipt["text"] == expected_receipt

    # The report is committed, as answered, in the reporter's language.
    case = await case_by_receipt(h, receipt["text"])
    assert case.report.language == locale
    assert case.report == plan.report(locale, today_utc())

    # /status with the receipt code (from any account it works; here, the same one).
    status = await r.send(f"/status {' '.join(match.groups())}")
    report_line = t.gettext("Report {case_id}: {state}").format(
        case_id=case.case_id, state=t.gettext("received")
    )
    assert status["text"] == f"{report_line}\n{t.gettext('No new messages from the team.')}"
    assert not any(str(m.get("text", "")).startswith("/status") for m in await r.messages()), (
        "the code sent with /status must not stay in the chat"
    )

    # /help.
    shown_help = await r.send("/help")
    assert shown_help["text"] == t.gettext(msgid_starting(HELP_PREFIX))

    # /language: every shipped language, by its own name, in the picker's order; choosing one answers.
    picker = await r.send("/language")
    assert picker["text"] == t.gettext("Choose your language:")
    buttons = [b for row in picker["reply_markup"]["inline_keyboard"] for b in row]
    assert [b["text"] for b in buttons] == [native_name(code) for code in ordered_locales()]
    assert [b["callback_data"] for b in buttons] == [f"l:{code}" for code in ordered_locales()]
    mark = await r.last_id()
    await r.sb.press_button(r.user_id, picker["message_id"], data=f"l:{locale}", bot_id=r.bot_id)
    changed = await r.reply_after(mark)
    assert changed["text"] == t.gettext("Language changed.")

    # /x: everything goes, the receipt too, and nothing is said.
    await r.messages()  # the last look at the chat before it is wiped
    before_x = max((int(c["seq"]) for c in await h.sb.calls(bot_id=h.bot_id)), default=0)
    await r.sb.send_text(r.user_id, "/x", bot_id=r.bot_id)

    async def empty() -> bool:
        return not await r.sb.messages(r.user_id, bot_id=r.bot_id)

    await h.sb.wait_until(empty)
    said = [
        c for c in await h.sb.calls(bot_id=h.bot_id, after=before_x) if str(c["method"]).startswith("send")
    ]
    assert not said, f"/x must say nothing: {said}"

    # Nothing the bot tried to show in this chat was refused by Telegram (a refused message is never seen).
    refused = [
        f"{c['method']} answered {c['error_code']}"
        for c in await h.sb.calls(bot_id=h.bot_id)
        if str(c["chat_id"]) == str(r.user_id)
        and not c["ok"]
        and str(c["method"]).startswith(("send", "edit", "answerCallbackQuery"))
    ]
    problems += [f"Telegram refused: {call}" for call in refused]

    problems += problems_in(locale, list(r.shown.values()))
    assert not problems, f"{len(problems)} problem(s) in {locale}:\n" + "\n".join(problems)
