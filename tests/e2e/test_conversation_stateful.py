"""Hypothesis stateful test of the reporter's conversation against the real bot over real HTTP.

A `RuleBasedStateMachine` plays one new reporter per example: any text (every script, RTL and zero-width
characters, markup look-alikes, 10,000 characters split as a client does), known and unknown commands with
random arguments, any button shown now, stale buttons of older messages, forged callback data (random, other
steps', the coordinators'), stickers, voice notes, photos, documents, locations, contacts, polls, edits,
messages in a group, and bursts over the flood guard. After every step, once the bot has processed it: the
bot answered (a message, or the callback query), no failure reached the error handler or any log at ERROR,
no Bot API call failed except the deletions and edits the bot tolerates, nothing logged quotes what the
reporter typed or names them, and every receipt shown opens a stored case. At the end of each example the
conversation is not stuck: /start and the quickest path reach a receipt, and exactly one case exists per
receipt shown.

Hypothesis machines are synchronous, so the sandbox and the Application run on an event loop in a
background thread; each rule calls into it with `asyncio.run_coroutine_threadsafe`. The bot handles updates
of different chats at once (BEACON_CONCURRENT_UPDATES), so after each action the machine waits until the bot
has fetched every update sent so far and handled each through its last handler group
(`handled_everything_sent`): assertions never depend on timing. Derandomised for CI; set
BEACON_STATEFUL_EXAMPLES (and BEACON_STATEFUL_STEPS) for longer local runs.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from bot.app import (
    BeaconApplication,
    build_application,
    configure_logging,
    start_application,
    stop_application,
)
from bot.config import Settings, load_settings
from bot.keys import generate_secret_key
from handlers.intake.conversation import FLOOD_MESSAGES, SERVICES_KEY, IntakeContext
from handlers.intake.draft import FLOW, VICTIM_FLOW, Step
from sandbox.client import SandboxClient, SandboxError
from sandbox.samples import sample_png
from sandbox.server import SandboxServer
from tests.e2e.conftest import coordinators_world, handled_everything_sent
from tests.e2e.intake_flow import CODE, GAZETTEER, QUICK, Plan, Walk, case_by_receipt, case_ids
from tests.e2e.reporter import Reporter

JSON = dict[str, Any]
T = TypeVar("T")

EXAMPLES = int(os.environ.get("BEACON_STATEFUL_EXAMPLES", "20"))
STEPS = int(os.environ.get("BEACON_STATEFUL_STEPS", "20"))
# Generous: a loaded 2-core CI machine. Only reached when the bot failed to answer at all.
TIMEOUT = 30.0
BOT_USERNAME = "beacon_test_bot"
# Bot API calls the bot makes knowing they may fail, and handles: deleting messages already gone or
# too old, and redrawing buttons that did not change ("message is not modified").
TOLERATED_FAILURES = {"deleteMessages", "deleteMessage", "editMessageReplyMarkup"}

LONG_TEXT = ("Long account of what happened, line after line; 长文 — ملاحظة " * 200)[:10_000]
META = "<b>x</b> *y* _z_ [l](http://e.example) `code` &amp; <i> {name} %s %(x)s \\n"
SPECIAL_TEXTS = [
    "\u200b",  # zero-width space only: not whitespace, so it reaches the bot
    "\u200f\u202e\u2066",  # direction marks only
    "abc \u202eevil\u202c zero\u200bwidth\u200d join \u2066isolated\u2069 \u200fend",
    META,
    "مرحبا، أخي محتجز في المبنى ٥",  # Arabic
    "אחי נמצא בבניין",  # Hebrew
    "พี่ชายของฉันถูกขังอยู่",  # Thai
    "ကျွန်တော့်အစ်ကို ဖမ်းထားတယ်",  # Burmese
    "បងប្រុសខ្ញុំត្រូវបានឃុំខ្លួន",  # Khmer
    "我哥哥被关在五号楼",  # Chinese
    "भाई को बंद कर रखा है",  # Devanagari
    "👨‍👩‍👧‍👦🏳️‍🌈 e\u0301\u0301\u0301",  # emoji sequences and stacked combining marks
    "x" * 4096,
    "/",
    "@" + BOT_USERNAME,
    "0912 3456 7890 1234",
]
REPORTER_COMMANDS = ["start", "x", "language", "help", "status", "add", "delete"]
STAFF_COMMANDS = [
    "queue", "mine", "case", "grant", "revoke", "duty", "reply", "note", "notes", "priority", "link",
    "tag", "find", "stats", "hotspots", "export",
]  # fmt: skip
UNKNOWN_COMMANDS = ["cancel", "stop", "settings", "admin", "Start", "STATUS", "x_x", "a" * 32]
STEPS_VALUES = [s.value for s in Step]

visible_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60).filter(
    lambda s: bool(s.strip())
)
any_text = st.one_of(visible_text, st.sampled_from(SPECIAL_TEXTS))
arguments = st.one_of(
    st.just(""),
    st.lists(
        st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Cc")), min_size=1, max_size=20),
        min_size=1,
        max_size=4,
    ).map(" ".join),
    st.sampled_from(
        ["0912 3456 7890 1234", "1234567890123456", "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦", "K7MX-Q9PT", "K7MX-Q9PT P1 x",
         "area=kh-sen-sok status=new", "on", "off", "123 admin", "-5 coordinator", "a=b=c", "="]
    ),
)  # fmt: skip
callback_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=64).filter(
    lambda s: len(s.encode()) <= 64
)
structured_callback = st.builds(
    lambda prefix, step, value: f"{prefix}:{step}:{value}",
    st.sampled_from(["s", "w", "x", "l", "gl", "S", ""]),
    st.sampled_from([*STEPS_VALUES, "claim", "status", "reason", "details", "csv", "menu", "vi"]),
    st.sampled_from(["yes", "no", "skip", "done", "submit", "clear", "c-KH", "c-ZZ", "c-éé", "kh-sen-sok",
                     "mm-myawaddy", "other", "unknown", "who", "locked_in", "VN", "continue", "stop",
                     "", ":", "K7MX-Q9PT:new", "full"]),
).filter(lambda s: 0 < len(s.encode()) <= 64)  # fmt: skip
forged_callback = st.one_of(
    callback_text,
    structured_callback,
    st.sampled_from(["l:menu", "l:xx", "l:", "s:review:submit", "s:receipt:clear", "gl:vi", "x:csv"]),
)
# Values a step's buttons carry, for forging them at another step; ids of areas in other countries too.
SPECIAL_VALUES = [
    "yes", "no", "skip", "done", "submit", "clear", "continue", "stop", "unknown", "other", "c-KH", "c-MM",
    "c-ZZ", "c-éé", "c-", "kh-sen-sok", "mm-myawaddy", "kh-nowhere", "self", "witness", "locked_in", "VN",
    "XX", "25-34", "female", "taken", "21-100", "on_check_in", "week", "who", "victim", "where", "", ":",
    "::",
]  # fmt: skip
GROUP_COMMANDS = [
    "/start", "/start@" + BOT_USERNAME, "/help", "/x", "/language", "/status 1234",
    "/nonsense@" + BOT_USERNAME,
]  # fmt: skip
# A plan that passes every question of the main flow (the victim's too, and a country with areas).
PLAN = Plan(victim=True, victim_photo=False, details=("Sixteen hours a day.",))
START_AT = (
    ["beginning"] * 4 + [s.value for s in (*FLOW, *VICTIM_FLOW, Step.AREA) if s is not Step.WHO] + ["receipt"]
)
LANGUAGE_CODES = ["en", "vi", "zh-hans", "ar", "my", "th", "km", "xx", None, "en-US", "pt-br"]


class LoopThread:
    """An event loop running in a daemon thread; `run` waits for a coroutine scheduled on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="stateful-bot", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 3 * TIMEOUT) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Recorder(logging.Handler):
    """Keeps every log record's level, logger and fully formatted text (traceback included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[int, str, str]] = []
        self.guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        with self.guard:
            self.lines.append((record.levelno, record.name, text))

    def since(self, index: int) -> list[tuple[int, str, str]]:
        with self.guard:
            return self.lines[index:]


@dataclass
class World:
    """The running sandbox, bot, coordinators' group and a second, ordinary group with the bot in it."""

    loop: LoopThread
    server: SandboxServer
    sb: SandboxClient
    app: BeaconApplication
    settings: Settings
    bot_id: int
    group_id: int
    other_group_id: int
    coordinator_id: int
    log: Recorder
    calls_seen: int = 0
    receipts: set[str] = field(default_factory=set)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run(coroutine)


async def _start(tmp: Path, log: Recorder, loop: LoopThread) -> World:
    server = SandboxServer()
    await server.start()
    sb = SandboxClient(server.url)
    world = await coordinators_world(sb, username=BOT_USERNAME, forum=False)
    await sb.set_limits(enabled=False)
    other = await sb.create_group(
        "Family chat",
        forum=False,
        admins=[world.coordinator_id],
        bots=[{"bot_id": world.bot_id, "admin": False}],
    )
    config = load_settings(
        _env_file=None,
        bot_token=world.token,
        api_url=server.url,
        database=tmp / "beacon.db",
        secret_key=generate_secret_key(),
        coordinator_chat_id=world.group_id,
        admins=[world.coordinator_id],
        reports_per_hour=1000,
    )
    app = build_application(config)
    await start_application(app)
    return World(
        loop, server, sb, app, config, world.bot_id, world.group_id, other["id"], world.coordinator_id, log
    )  # fmt: skip


async def _stop(world: World) -> None:
    await stop_application(world.app)
    await world.sb.close()
    await world.server.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    loop = LoopThread()
    recorder = Recorder()
    root = logging.getLogger()
    names = ["", "httpx", "httpcore", "telegram", "aiosqlite", "apscheduler", "tornado.access"]
    levels = {name: logging.getLogger(name).level for name in names}
    # The production logging setup (INFO, chatty libraries quieter), so that what it would write is checked.
    handlers = list(root.handlers)
    configure_logging("INFO")
    root.addHandler(recorder)
    built = loop.run(_start(tmp_path_factory.mktemp("stateful"), recorder, loop))
    try:
        yield built
    finally:
        loop.run(_stop(built))
        loop.close()
        root.removeHandler(recorder)
        for handler in [h for h in root.handlers if type(h) is logging.StreamHandler and h not in handlers]:
            root.removeHandler(handler)  # basicConfig's, had pytest installed none
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@dataclass(frozen=True)
class Sent:
    """A message the reporter sent: where, the id after which the answer comes, and whether the flood
    guard reads it (a private message that is not a command)."""

    chat_id: int
    after: int
    flood_guarded: bool
    what: str


def _callback_data(message: JSON) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [
        b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row if "callback_data" in b
    ]


class ConversationMachine(RuleBasedStateMachine):
    """One reporter per example doing anything a Telegram client lets them do, in any order."""

    world: World

    def __init__(self) -> None:
        super().__init__()
        w = self.world
        self.w = w
        self.log_mark = len(w.log.lines)
        self.cases_before = len(w.run(case_ids(self._h())))
        self.receipts: set[str] = set()
        self.typed: list[str] = []
        self.sent_texts: list[int] = []  # the reporter's text messages, which they may edit
        self.buttons_seen: list[tuple[int, str]] = []
        self.started_in_group = False
        self.r: Reporter | None = None
        self.name = ""

    # ------------------------------------------------------------------ plumbing

    def _h(self) -> Any:
        """What `intake_flow` helpers need of a harness: the app and settings."""
        return self.w

    @property
    def reporter(self) -> Reporter:
        assert self.r is not None
        return self.r

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        async def call() -> T:
            return await make()

        return self.w.run(call())

    async def _sync(self) -> None:
        """Return once every update sent so far is fully processed (its answers sent, its draft stored),
        whichever chat it came from: the reporter's private chat or the other group."""
        await handled_everything_sent(self.w.app, timeout=TIMEOUT)

    async def _bot_messages_after(self, message_id: int, chat_id: int | None = None) -> list[JSON]:
        chat = chat_id if chat_id is not None else self.reporter.user_id
        return [
            m
            for m in await self.w.sb.messages(chat, bot_id=self.w.bot_id)
            if m["from"]["is_bot"] and m["message_id"] > message_id
        ]

    async def _flood_window(self) -> int:
        intake = self.w.app.bot_data[SERVICES_KEY]
        assert isinstance(intake, IntakeContext)
        return len(intake.flood.get(self.reporter.user_id, ()))

    async def _after_step(self) -> None:
        """The invariants, checked once the step is fully processed."""
        w = self.w
        # Every receipt shown opens a stored case (a report is committed before the reporter is told).
        for message in await self.reporter.bot_messages():
            match = CODE.search(message.get("text") or "")
            if match and "".join(match.groups()) not in self.receipts:
                self.receipts.add("".join(match.groups()))
                await case_by_receipt(self._h(), message["text"])
        # Forged buttons never put a place in the report that no question offered.
        draft = w.app.user_data.get(self.reporter.user_id, {}).get("draft") or {}
        place = (draft.get("report") or {}).get("place") or {}
        if place.get("country") is not None:
            assert GAZETTEER.country(place["country"]) is not None, f"unknown country {place['country']!r}"
        if place.get("area_id") is not None:
            area = GAZETTEER.area(place["area_id"])
            assert area is not None, f"unknown area {place['area_id']!r}"
            assert area.country == place.get("country"), "an area of another country"
        # No Bot API call failed, except those the bot makes expecting that they may.
        calls = await w.sb.calls(bot_id=w.bot_id, after=w.calls_seen)
        if calls:
            w.calls_seen = max(c["seq"] for c in calls)
        # (Alert delivery to the coordinators has its own retries and fallbacks, tested elsewhere.)
        chats = {str(self.reporter.user_id), str(w.other_group_id), "None"}
        failed = [
            c
            for c in calls
            if not c["ok"] and c["method"] not in TOLERATED_FAILURES and str(c["chat_id"]) in chats
        ]
        assert not failed, f"Bot API calls failed: {failed}"
        self._check_log()

    def _check_log(self) -> None:
        records = self.w.log.since(self.log_mark)
        errors = [(name, text) for level, name, text in records if level >= logging.ERROR]
        assert not errors, f"errors logged: {errors}"
        assert not [r for r in records if r[1] == "handlers.errors"], "a failure reached the error handler"
        quoted = [t for t in self.typed if len(t.strip()) >= 8 and not t.strip().isdigit()]
        for _level, name, text in records:
            assert self.name not in text, f"the reporter's name was logged by {name}"
            for typed in quoted:
                assert typed.strip() not in text, f"{name} logged what the reporter typed"

    def _message_step(
        self, send: Callable[[], Awaitable[Sent | None]], *, answered: bool | None = True
    ) -> None:
        """Do something that sends the bot a message; once processed, check that it answered (None: not
        checked; False: it must stay silent). A private message that is not a command passes the flood guard
        first: over the limit only the first is answered ("slow down"), the rest are read silently."""

        async def step() -> None:
            sent = await send()
            await self._sync()
            if sent is None or answered is None:
                return
            replies = await self._bot_messages_after(sent.after, sent.chat_id)
            expect = answered
            if expect and sent.flood_guarded:
                expect = await self._flood_window() <= FLOOD_MESSAGES + 1
            if expect:
                assert replies, f"no answer to {sent.what}"
            elif answered is False:
                assert not replies, f"unexpected answer to {sent.what}: {[m.get('text') for m in replies]}"

        self.run(step)
        self.run(self._after_step)

    async def _send(self, *, chat_id: int | None = None, **content: Any) -> Sent:
        """Send a message as the reporter (privately unless `chat_id`)."""
        sent = await self.w.sb.send(self.reporter.user_id, bot_id=self.w.bot_id, chat_id=chat_id, **content)
        message = sent["message"]
        entities = message.get("entities") or []
        command = any(e["type"] == "bot_command" and e["offset"] == 0 for e in entities)
        private = chat_id is None
        if private and "text" in content and not command:
            self.sent_texts.append(message["message_id"])
        what = "a command" if command else "a message with " + ", ".join(sorted(content))
        return Sent(message["chat"]["id"], message["message_id"], private and not command, what)

    def _press(self, message_id: int, data: str) -> None:
        """Press (or forge) a button in the private chat; once processed, the query must be answered."""

        async def step() -> None:
            try:
                pressed = await self.w.sb.press_button(
                    self.reporter.user_id, message_id, data=data, forge=True, bot_id=self.w.bot_id
                )
            except SandboxError:
                return  # the message is gone: no client can press it
            await self._sync()
            answer = await self.w.sb.callback_answer(pressed["callback_query_id"])
            assert answer["answered"], f"the button {data!r} was not answered"

        self.run(step)
        self.run(self._after_step)

    # ------------------------------------------------------------------ the reporter

    @initialize(
        language=st.sampled_from(LANGUAGE_CODES),
        first=st.sampled_from(["start", "help", "text", "none"]),
        start_at=st.sampled_from(START_AT),
    )
    def new_reporter(self, language: str | None, first: str, start_at: str) -> None:
        """A new account, in any language Telegram reports. It may begin with /start, with something else or
        not at all, or first answer as planned up to any question (or the receipt), so that random steps
        start from every state and not only from the first few."""

        async def make() -> Reporter:
            self.name = f"Rep{len(self.w.receipts)}Q{id(self) % 99991}Zed"
            user = await self.w.sb.create_user(self.name, language_code=language, username=self.name.lower())
            await self.w.sb.set_member(self.w.other_group_id, user["id"], "member")
            return Reporter(self.w.sb, self.w.bot_id, user["id"])

        self.r = self.run(make)
        if start_at != "beginning":

            async def walk() -> None:
                walk = Walk(self.reporter, PLAN)
                if start_at == "receipt":
                    await walk.report()
                else:
                    await walk.begin()
                    await walk.until(Step(start_at))
                await self._sync()

            self.run(walk)
            self.run(self._after_step)
        elif first != "none":
            text = {"start": "/start", "help": "/help", "text": "hello"}[first]
            self._message_step(lambda: self._send(text=text))

    @rule(text=any_text)
    def types_text(self, text: str) -> None:
        self.typed.append(text)
        # "/x" and "/x@bot ..." wipe the chat and say nothing.
        wipes = text.split(" ")[0] in ("/x", "/x@" + BOT_USERNAME)
        self._message_step(lambda: self._send(text=text), answered=not wipes)

    @rule()
    def types_ten_thousand_characters(self) -> None:
        """A client splits a long text into messages of at most 4096 characters; each gets an answer."""
        self.typed.append(LONG_TEXT)
        for start in range(0, len(LONG_TEXT), 4096):
            part = LONG_TEXT[start : start + 4096]
            self._message_step(lambda part=part: self._send(text=part))

    @rule(
        command=st.sampled_from(REPORTER_COMMANDS + STAFF_COMMANDS + UNKNOWN_COMMANDS),
        args=arguments,
        addressed=st.sampled_from(["", "@" + BOT_USERNAME, "@other_bot"]),
    )
    def sends_command(self, command: str, args: str, addressed: str) -> None:
        text = f"/{command}{addressed} {args}".strip()
        self.typed.append(args)
        # /x wipes the chat and says nothing; any other command (addressed to another bot too) is answered.
        silent = command == "x" and addressed != "@other_bot"
        self._message_step(lambda: self._send(text=text), answered=not silent)

    @rule(index=st.integers(min_value=0, max_value=10_000))
    def presses_a_shown_button(self, index: int) -> None:
        """Any button on any message still visible: the current question's, or an older one's."""
        buttons = [
            (m["message_id"], data)
            for m in self.run(self.reporter.bot_messages)
            for data in _callback_data(m)
        ]
        self.buttons_seen.extend(b for b in buttons if b not in self.buttons_seen)
        if buttons:
            self._press(*buttons[index % len(buttons)])

    @rule(index=st.integers(min_value=0, max_value=10_000))
    def answers_the_question(self, index: int) -> None:
        """A button of the newest message that has any: the question being asked, so the report moves on."""
        current = self._current()
        if current is not None:
            message_id, buttons = current
            self._press(message_id, buttons[index % len(buttons)])

    @rule(value=st.one_of(st.sampled_from(SPECIAL_VALUES), callback_text))
    def forges_an_answer_to_the_question(self, value: str) -> None:
        """The question's own step with a value none of its buttons carries (or one of another step's)."""
        current = self._current()
        if current is not None:
            message_id, buttons = current
            prefix = buttons[0].rsplit(":", 1)[0] if buttons[0].startswith("s:") else "s:danger"
            data = f"{prefix}:{value}"
            if len(data.encode()) <= 64:
                self._press(message_id, data)

    @rule(
        value=st.sampled_from(["c-ZZ", "c-éé", "c-", "c-kh", "mm-myawaddy", "kh-nowhere", "other", "unknown"])
    )
    def forges_a_place(self, value: str) -> None:
        """A country or area no button offered, at whatever question is showing (WHERE and AREA above all)."""
        self.forges_an_answer_to_the_question(value)

    def _current(self) -> tuple[int, list[str]] | None:
        for message in reversed(self.run(self.reporter.bot_messages)):
            buttons = _callback_data(message)
            if buttons:
                self.buttons_seen.extend((message["message_id"], d) for d in buttons)
                return message["message_id"], buttons
        return None

    @rule(index=st.integers(min_value=0, max_value=10_000))
    def presses_a_stale_button(self, index: int) -> None:
        """A button seen earlier, whose question was answered (its buttons removed) or replaced."""
        if self.buttons_seen:
            self._press(*self.buttons_seen[index % len(self.buttons_seen)])

    @rule(data=forged_callback, index=st.integers(min_value=0, max_value=10_000))
    def presses_forged_data(self, data: str, index: int) -> None:
        messages = self.run(self.reporter.bot_messages)
        if messages:
            self._press(messages[index % len(messages)]["message_id"], data)

    @rule(index=st.integers(min_value=0, max_value=10_000))
    def presses_coordinators_button(self, index: int) -> None:
        """Data of a ticket card's button (another user's), pressed in the reporter's private chat."""
        cards = self.run(lambda: self.w.sb.messages(self.w.group_id, bot_id=self.w.bot_id))
        data = [d for m in cards for d in _callback_data(m)]
        messages = self.run(self.reporter.bot_messages)
        if data and messages:
            self._press(messages[index % len(messages)]["message_id"], data[index % len(data)])

    @rule(
        kind=st.sampled_from(["sticker", "voice", "photo", "photo_caption", "image_file", "broken_image",
                              "pdf", "contact", "poll", "location", "hub_location"]),
        latitude=st.floats(min_value=-90, max_value=90),
        longitude=st.floats(min_value=-180, max_value=180),
    )  # fmt: skip
    def sends_media(self, kind: str, latitude: float, longitude: float) -> None:
        png = base64.b64encode(sample_png()).decode()
        content: JSON = {
            "sticker": {"sticker": {"emoji": "🙂"}},
            "voice": {"voice": {"duration": 2}},
            "photo": {"photo": {}},
            "photo_caption": {"photo": {"caption": "Building 5, third floor"}},
            "image_file": {
                "document": {"file_name": "a.png", "mime_type": "image/png", "content_base64": png}
            },
            "broken_image": {
                "document": {
                    "file_name": "b.jpg",
                    "mime_type": "image/jpeg",
                    "content_base64": "bm90IGFuIGltYWdl",
                }
            },
            "pdf": {"document": {}},
            "contact": {"contact": {"phone_number": "+15550001234", "first_name": "Boss"}},
            "poll": {"poll": {"question": "Where?", "options": ["A", "B"]}},
            "location": {"location": {"latitude": latitude, "longitude": longitude}},
            "hub_location": {"location": {"latitude": 11.5925, "longitude": 104.8671}},
        }[kind]
        self._message_step(lambda: self._send(**content))

    @rule(text=any_text, index=st.integers(min_value=0, max_value=10_000))
    def edits_a_message(self, text: str, index: int) -> None:
        if not self.sent_texts:
            return
        self.typed.append(text)
        message_id = self.sent_texts[index % len(self.sent_texts)]

        async def edit() -> Sent | None:
            mark = await self.reporter.last_id()
            try:
                await self.w.sb.edit_message(self.reporter.user_id, message_id, text, bot_id=self.w.bot_id)
            except SandboxError:
                return None  # wiped meanwhile: no client can edit it
            return Sent(self.reporter.user_id, mark, False, "an edit")

        self._message_step(edit)

    @rule(text=st.one_of(any_text, st.sampled_from(GROUP_COMMANDS)))
    def writes_in_a_group(self, text: str) -> None:
        """In a group the bot answers /start once and commands naming it; nothing else, and never fails."""
        self.typed.append(text)
        command = text.split(" ")[0]
        answered: bool | None = None
        if command in ("/start", "/start@" + BOT_USERNAME):
            answered = not self.started_in_group
            self.started_in_group = True
        elif command.startswith("/") and command.endswith("@" + BOT_USERNAME):
            answered = True
        self._message_step(lambda: self._send(text=text, chat_id=self.w.other_group_id), answered=answered)

    @rule(count=st.integers(min_value=FLOOD_MESSAGES - 5, max_value=FLOOD_MESSAGES + 8), text=visible_text)
    def floods(self, count: int, text: str) -> None:
        """Many messages at once: answered until the guard trips, then one "slow down", then silence."""
        self.typed.append(text)

        async def burst() -> None:
            before = await self.reporter.last_id()
            # Entries only leave the window: at most this many recent messages when the first one is read.
            window = await self._flood_window()
            for _ in range(count):
                await self.w.sb.send_text(self.reporter.user_id, text, bot_id=self.w.bot_id)
            await self._sync()
            if window <= FLOOD_MESSAGES:
                assert await self._bot_messages_after(before), "a burst went unanswered"

        self.run(burst)
        self.run(self._after_step)

    # ------------------------------------------------------------------ the end of each example

    def teardown(self) -> None:
        """From wherever the reporter is, /start and the quickest path reach a receipt; one case each."""
        if self.r is None:
            return

        async def finish() -> None:
            receipt = await Walk(self.reporter, QUICK).report()
            await case_by_receipt(self._h(), receipt["text"])
            await self._sync()

        self.run(finish)
        self.run(self._after_step)
        cases = self.run(lambda: case_ids(self._h()))
        assert len(cases) - self.cases_before == len(self.receipts), "one case per receipt shown, no more"
        self.w.receipts |= self.receipts


def test_any_sequence_of_updates_is_answered_and_never_leaves_the_conversation_stuck(world: World) -> None:
    """Whatever a reporter sends, in whatever order, the bot answers without failing, logs nothing they
    typed, stores exactly one case per receipt shown, and a report can always still be completed."""
    ConversationMachine.world = world
    run_state_machine_as_test(
        ConversationMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
        ),
    )
