"""Fuzzing every parser of outside input: button data, receipt codes and case ids, staff commands' arguments,
and the deployer's gazetteer and routing files. Whatever arrives either parses to a valid value or is refused
with the documented error (or a clear answer), never another exception; encoders round-trip; forged button
data never yields an action the question or the presser's role does not allow.

Complements the property tests in test_routing.py (arbitrary text), test_export_domain.py (parse_filters) and
tests/storage/test_crypto.py (receipt normalisation).
"""

from __future__ import annotations

import contextlib
import copy
import json
import tempfile
import tomllib
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import InlineKeyboardMarkup, Update

from bot.crypto import CASE_ID_ALPHABET, format_receipt, normalise_case_id, normalise_receipt, verify_receipt
from bot.domain.gazetteer import Gazetteer, GazetteerError, load_gazetteer
from bot.domain.models import CaseStatus
from bot.domain.routing import RoutingError, load_routing
from bot.domain.workflow import ClosingReason, Role
from bot.i18n import get_translator
from bot.services.casework import NotAllowed, UnknownCase
from handlers.coordinators import actions
from handlers.coordinators.actions import CASEWORK_KEY, CaseworkContext
from handlers.coordinators.cards import closing_markup
from handlers.intake.conversation import refused_choice
from handlers.intake.draft import COMMON_NATIONALITIES, Step, apply_choice, new_draft, report_of
from handlers.intake.questions import question
from handlers.intake.review import review_question

GAZETTEER = load_gazetteer()
EN = get_translator("en")
TODAY = date(2026, 3, 1)
# Derandomised: the same examples on every run and in CI (HYPOTHESIS_PROFILE-independent).
FUZZ = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

any_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)
# Strings that look like what parsers expect, mixed with noise, so that fuzzing reaches past the first check.
near_miss = st.one_of(
    any_text,
    st.sampled_from(
        ["", " ", ":", "::", "skip", "done", "yes", "no", "c-KH", "c-kh", "c-ZZ", "c-éé", "c-", "c-KHM",
         "kh-sen-sok", "mm-myawaddy", "kh-nowhere", "other", "unknown", "submit", "continue", "stop", "VN",
         "XX", "locked_in", "self", "25-34", "female", "taken", "21-100", "on_check_in", "week", "who",
         "victim", "where", "P1", "p٣", "P0", "P5", "new", "closed", "²", "--5", "-0", "١٢٣", "12_3",
         "K7MX-Q9PT", "k7mx q9pt", "=", "a=b=c", "status=", "priority=p", "priority=P٢", "area=kh-sen-sok",
         "indicator=locked_in", "duplicate", "admin", "coordinator", "ANALYST", "on", "off", "\u200b", "\x00"]
    ),
)  # fmt: skip


def offered_data(step: Step, draft: dict[str, Any]) -> list[str]:
    q = review_question(EN, draft, GAZETTEER) if step is Step.REVIEW else question(step, EN, draft, GAZETTEER)
    markup = q.markup if isinstance(q.markup, InlineKeyboardMarkup) else None
    return [str(b.callback_data) for row in (markup.inline_keyboard if markup else ()) for b in row]


CHOICE_STEPS = [
    s for s in Step if s not in (Step.FAST_WHERE, Step.FAST_LINE, Step.RECEIPT, Step.ADD, Step.WITHDRAW)
]


def a_draft(country: str | None) -> dict[str, Any]:
    draft = new_draft("en")
    draft["report"]["place"]["country"] = country
    return draft


# --- the reporter's buttons -------------------------------------------------------------------------------


@FUZZ
@given(
    step=st.sampled_from(CHOICE_STEPS),
    value=near_miss,
    country=st.sampled_from([None, "KH", "MM", "LA", "ZZ"]),
)
def test_forged_button_values_are_refused_or_act_as_an_offered_button(step, value, country):
    """Any value at any step: never an exception; it records something only if the question offers it (an
    unoffered alias of skip just moves on); the draft stays a valid report either way."""
    draft = a_draft(country)
    before = copy.deepcopy(draft)
    offered = offered_data(step, draft)
    if refused_choice(GAZETTEER, draft, step, value):
        assert f"s:{step.value}:{value}" not in offered
        return
    following = apply_choice(draft, step, value, TODAY)
    report_of(draft)  # still valid
    if following is None:
        assert draft["report"] == before["report"], "a refused value changed the draft"
    elif f"s:{step.value}:{value}" not in offered:
        # Only an alias of skip ("done", "unknown") may pass unoffered, and it records nothing.
        assert draft["report"] == before["report"], f"{value!r} at {step} recorded what no button offers"


@pytest.mark.parametrize("step", CHOICE_STEPS, ids=lambda s: s.value)
@pytest.mark.parametrize("country", [None, "KH", "MM"])
def test_every_offered_button_fits_64_bytes_parses_back_and_is_accepted(step, country):
    """Encode → decode is the identity for every button a question shows, and pressing it is never refused
    (submit and stop are handled before the draft is touched)."""
    if step is Step.AREA and country is None:
        return  # the area question follows a country
    for data in offered_data(step, a_draft(country)):
        assert 0 < len(data.encode()) <= 64
        prefix, _, rest = data.partition(":")
        step_value, _, value = rest.partition(":")
        assert (prefix, step_value) == ("s", step.value)
        draft = a_draft(country)
        assert not refused_choice(GAZETTEER, draft, step, value)
        if (step, value) not in ((Step.REVIEW, "submit"), (Step.FAST_MORE, "stop")):
            assert apply_choice(draft, step, value, TODAY) is not None, data


def test_a_forged_place_is_refused():
    """A country or area no button offered (unknown, or an area of another country) is refused."""
    kh = a_draft("KH")
    assert refused_choice(GAZETTEER, kh, Step.WHERE, "c-ZZ")
    assert refused_choice(GAZETTEER, kh, Step.WHERE, "c-éé")
    assert refused_choice(GAZETTEER, kh, Step.AREA, "mm-myawaddy")
    assert refused_choice(GAZETTEER, kh, Step.AREA, "kh-nowhere")
    assert not refused_choice(GAZETTEER, kh, Step.AREA, "kh-sen-sok")
    assert not refused_choice(GAZETTEER, kh, Step.WHERE, "c-MM")


@FUZZ
@given(values=st.lists(st.sampled_from([*COMMON_NATIONALITIES, "done", "XX"]), max_size=40))
def test_toggling_nationalities_any_number_of_times_keeps_a_valid_report(values):
    draft = a_draft(None)
    for value in values:
        apply_choice(draft, Step.NATIONALITIES, value, TODAY)
    assert len(set(report_of(draft).nationalities)) == len(report_of(draft).nationalities)


# --- receipt codes and case ids ---------------------------------------------------------------------------

DIGITS = {  # the digits 0-9 of scripts a reporter's phone may type
    "ascii": "0123456789",
    "thai": "๐๑๒๓๔๕๖๗๘๙",
    "myanmar": "၀၁၂၃၄၅၆၇၈၉",
    "khmer": "០១២៣៤៥៦៧៨៩",
    "arabic": "٠١٢٣٤٥٦٧٨٩",
    "persian": "۰۱۲۳۴۵۶۷۸۹",
    "devanagari": "०१२३४५६७८९",
    "fullwidth": "０１２３４５６７８９",
}


@FUZZ
@given(
    code=st.from_regex(r"[1-9][0-9]{15}", fullmatch=True),
    scripts=st.lists(st.sampled_from(sorted(DIGITS)), min_size=16, max_size=16),
    separators=st.lists(
        st.sampled_from(["", " ", "-", ".", "\u2013", "\u00a0", "\uff0d", "\n"]), min_size=16
    ),
    plus=st.sampled_from(["", "+", "\uff0b", " +"]),
)
def test_a_receipt_typed_in_any_script_with_any_separators_reads_back(code, scripts, separators, plus):
    """The same 16 digits however a phone keyboard writes them; the formatted code round-trips too."""
    typed = plus + "".join(
        DIGITS[s][int(d)] + sep for d, s, sep in zip(code, scripts, separators, strict=False)
    )
    assert normalise_receipt(typed) == code
    assert normalise_receipt(format_receipt(typed)) == code


@FUZZ
@given(text=near_miss)
def test_formatting_something_that_is_not_a_code_raises_value_error_only(text):
    try:
        formatted = format_receipt(text)
    except ValueError as error:
        message = str(error)
    else:
        assert normalise_receipt(formatted) == normalise_receipt(text)
        return
    assert "receipt" in message


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    n=st.one_of(st.sampled_from(["2", "4", "16", "0", "3", "-2", "１６", "99999999", ""]), any_text),
    r=st.sampled_from(["1", "8", "0", "33", "x"]),
    p=st.sampled_from(["1", "0", "17"]),
    salt=st.one_of(st.just("c2FsdHNhbHRzYWx0c2FsdA=="), st.just(""), any_text),
    digest=st.one_of(st.just("aGFzaGhhc2hoYXNoaGFzaGhhc2g="), st.just("c2hvcnQ="), any_text),
    head=st.sampled_from(["scrypt", "SCRYPT", "bcrypt", ""]),
)
def test_a_structured_but_wrong_stored_hash_never_verifies_nor_raises(n, r, p, salt, digest, head):
    """Cheap parameters only (a real cost would make this slow): wrong values give False, never raise."""
    assert verify_receipt("4821093756102938", "$".join((head, n, r, p, salt, digest))) is False


@FUZZ
@given(text=near_miss)
def test_a_typed_case_id_normalises_to_a_valid_id_or_none_and_is_idempotent(text):
    result = normalise_case_id(text)
    if result is not None:
        assert len(result) == 9
        assert result[4] == "-"
        assert set(result.replace("-", "")) <= set(CASE_ID_ALPHABET)
        assert normalise_case_id(result) == result


# --- the coordinators' card buttons -----------------------------------------------------------------------

REASONS = [r.value for r in ClosingReason]
case_ids = st.text(alphabet=CASE_ID_ALPHABET, min_size=8, max_size=8).map(lambda s: f"{s[:4]}-{s[4:]}")


@FUZZ
@given(case_id=case_ids)
def test_card_closing_buttons_fit_64_bytes_and_decode_to_their_action(case_id):
    """Encode → decode: the handler's split gives back the verb, the case and a valid reason."""
    for row in closing_markup(EN, case_id).inline_keyboard:
        for button in row:
            data = str(button.callback_data)
            assert len(data.encode()) <= 64
            parts = data.split(":")
            assert (parts[0], parts[2]) == ("w", case_id)
            assert len(parts) in (3, 4)
            if parts[1] == "reason":
                ClosingReason(parts[3])


class FakeBot:
    """Records what handlers send or answer, like a phone screen."""

    username = "beacon_test_bot"
    defaults = None

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.answers: list[dict[str, Any]] = []

    async def send_message(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)

    async def answer_callback_query(self, **kwargs: Any) -> bool:
        self.answers.append(kwargs)
        return True


class FakeCasework:
    """The casework service's role check, as the real one does it: every call by someone without a role is
    refused; a member of staff's calls are recorded (and the case is unknown, so nothing is rendered)."""

    MUTATIONS = (
        "claim",
        "unassign",
        "set_status",
        "close",
        "note",
        "override_priority",
        "link",
        "tag",
        "grant",
    )

    def __init__(self, staff: bool) -> None:
        self.staff = staff
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        async def call(actor: int, *args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, (*args, *kwargs.values())))
            if not self.staff:
                raise NotAllowed
            if name in ("view_case", "case"):
                raise UnknownCase
            return {"find": [], "notes": [], "role": Role.ADMIN, "revoke": True}.get(name)

        return call


class FakeContext:
    """The parts of CallbackContext the staff handlers use; `args` as python-telegram-bot splits them."""

    def __init__(self, bot: FakeBot, service: FakeCasework, args: list[str]) -> None:
        self.bot = bot
        self.args = args
        self.user_data: dict[str, Any] = {}

        async def chat_ids() -> list[int]:
            return [-100123]

        async def no_card(chat: int, thread: int | None, message: int) -> None:
            return None

        self.bot_data = {
            CASEWORK_KEY: CaseworkContext(
                service=service,  # type: ignore[arg-type]
                gazetteer=GAZETTEER,
                locale="en",
                timezone=ZoneInfo("Asia/Phnom_Penh"),
                chat_ids=chat_ids,
                relay=None,  # type: ignore[arg-type]
                case_for_card=no_card,
            )
        }


def message_update(text: str, bot: FakeBot, chat_type: str) -> Update:
    chat_id = 555 if chat_type == "private" else -100123
    chat: dict[str, Any] = {
        "id": chat_id,
        "type": chat_type,
        **({"title": "C"} if chat_type != "private" else {}),
    }
    message = {
        "message_id": 10,
        "date": 1_700_000_000,
        "chat": chat,
        "from": {"id": 555, "is_bot": False, "first_name": "Alice"},
        "text": text,
        "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
    }
    update = Update.de_json({"update_id": 1, "message": message}, None)
    assert update.message is not None
    update.message.set_bot(bot)  # type: ignore[arg-type]
    return update


COMMANDS = {
    "grant": actions.grant_command,
    "revoke": actions.revoke_command,
    "find": actions.find_command,
    "priority": actions.priority_command,
    "link": actions.link_command,
    "tag": actions.tag_command,
    "case": actions.case_command,
    "note": actions.note_command,
    "notes": actions.notes_command,
    "duty": actions.duty_command,
}
SUCCESS = {"Note added.", "No notes.", "Priority changed.", "Cases linked.", "Tag added.", "No cases match.",
           "You are on duty.", "You are off duty.", "Nothing to revoke."}  # fmt: skip
argument = near_miss.filter(lambda s: bool(s.split()) and len(s.split()) == 1)


@FUZZ
@given(
    command=st.sampled_from(sorted(COMMANDS)),
    args=st.lists(argument, max_size=4),
    staff=st.booleans(),
    chat_type=st.sampled_from(["private", "supergroup"]),
)
async def test_any_staff_command_arguments_get_one_answer_and_never_raise(command, args, staff, chat_type):
    """Malformed arguments get the usage line; someone without a role gets the refusal; never a crash."""
    bot, service = FakeBot(), FakeCasework(staff)
    text = " ".join([f"/{command}", *args])
    context = FakeContext(bot, service, text.split()[1:])
    await COMMANDS[command](message_update(text, bot, chat_type), context)  # type: ignore[arg-type]
    assert len(bot.sent) == 1, f"/{command} {args} was answered {len(bot.sent)} times"
    if not staff:
        assert bot.sent[0]["text"] not in SUCCESS
        assert not bot.sent[0]["text"].startswith("Done")


@FUZZ
@given(
    data=st.one_of(
        near_miss.map(lambda s: f"w:{s}"),
        st.builds(
            lambda verb, case, arg: f"w:{verb}:{case}" + (f":{arg}" if arg is not None else ""),
            st.sampled_from(["claim", "unassign", "status", "close", "reason", "cancel", "details", "x", ""]),
            st.one_of(case_ids, st.sampled_from(["K7MX-Q9PT", "", "k7mx-q9pt"]), any_text),
            st.one_of(st.none(), st.sampled_from([*(s.value for s in CaseStatus), *REASONS]), any_text),
        ),
    ).filter(lambda d: len(d.encode()) <= 64),
    staff=st.booleans(),
    in_group=st.booleans(),
)  # fmt: skip
async def test_forged_card_buttons_are_answered_once_and_act_only_as_encoded(data, staff, in_group):
    """A forged card button is answered exactly once; without a role nothing changes; with one, a change is
    made only when the data decodes to a verb, a case and a valid argument, re-encoding to the same data."""
    bot, service = FakeBot(), FakeCasework(staff)
    payload = {
        "update_id": 2,
        "callback_query": {
            "id": "q1",
            "from": {"id": 555, "is_bot": False, "first_name": "Alice"},
            "chat_instance": "1",
            "data": data,
            "message": {
                "message_id": 7,
                "date": 1_700_000_000,
                "chat": {"id": -100123, "type": "supergroup", "title": "C"}
                if in_group
                else {"id": 555, "type": "private"},
                "from": {"id": 42, "is_bot": True, "first_name": "Beacon"},
                "text": "card",
            },
        },
    }
    update = Update.de_json(payload, None)
    assert update.callback_query is not None
    assert update.callback_query.message is not None
    update.callback_query.set_bot(bot)  # type: ignore[arg-type]
    update.callback_query.message.set_bot(bot)  # type: ignore[arg-type]
    await actions.on_card_button(update, FakeContext(bot, service, []))  # type: ignore[arg-type]
    assert len(bot.answers) == 1
    mutations = [c for c in service.calls if c[0] in FakeCasework.MUTATIONS]
    if mutations and staff:
        (name, arguments) = mutations[0]
        verb = {"set_status": "status", "close": "reason"}.get(name, name)
        encoded = ":".join(["w", verb, *(str(getattr(a, "value", a)) for a in arguments)])
        # A verb without an argument ignores a forged one (the same action as the real button).
        assert data == encoded or (len(arguments) == 1 and data.startswith(encoded + ":")), (data, encoded)


# --- the deployer's files ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: (
        st.lists(inner, min_size=1, max_size=4) | st.dictionaries(any_text, inner, min_size=1, max_size=4)
    ),
    max_leaves=12,
)
area_like = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["kh-x", "kh-sen-sok", "mm-y", "KH-X", "zz-q", "kh-", "x" * 60]),
        "country": st.sampled_from(["KH", "MM", "ZZ", "kh", ""]),
        "name": st.one_of(any_text, st.just("Block 1234567")),
        "latitude": st.one_of(st.floats(), st.integers(), st.just("11.5")),
        "longitude": st.one_of(st.floats(allow_nan=True), st.just(None)),
        "precision_km": st.one_of(st.floats(), st.just(0)),
        "source": st.one_of(any_text, st.just("OHCHR 2023")),
    },
    optional={"local_name": any_text | st.none(), "extra": json_values},
)
gazetteer_like = st.fixed_dictionaries(
    {},
    optional={
        "version": json_values,
        "countries": st.lists(
            st.fixed_dictionaries({"code": st.sampled_from(["KH", "ZZ", "zz", "K"]), "name": any_text}),
            max_size=3,
        )
        | json_values,
        "areas": st.lists(area_like, max_size=3) | json_values,
        "unknown": json_values,
    },
)


def load_extra_gazetteer(content: bytes) -> Gazetteer | None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "extra.json"
        path.write_bytes(content)
        try:
            return load_gazetteer(path)
        except GazetteerError as error:
            message = str(error)
    assert message.startswith(str(path)), "the message names the file"
    return None


@FUZZ
@given(data=st.one_of(gazetteer_like, json_values))
def test_a_structured_but_wrong_gazetteer_file_loads_or_raises_gazetteer_error(data):
    """JSON of the right shape with wrong values, or any JSON at all: a Gazetteer or GazetteerError."""
    gazetteer = load_extra_gazetteer(json.dumps(data, allow_nan=True).encode())
    if gazetteer is not None:
        for area in gazetteer.areas_in("KH"):
            assert gazetteer.country(area.country) is not None


@FUZZ
@given(content=st.one_of(st.binary(max_size=200), st.just(b"\xff\xfe{}"), st.just(b"[" * 5000)))
def test_any_bytes_as_a_gazetteer_file_load_or_raise_gazetteer_error(content):
    load_extra_gazetteer(content)


def toml_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, bool) else str(value).lower()


rule_like = st.dictionaries(
    st.sampled_from(["chat_id", "languages", "countries", "areas", "unknown"]),
    st.one_of(
        st.integers(min_value=-(2**70), max_value=2**70),
        st.lists(any_text.filter(lambda s: "\\" not in s), max_size=3),
        any_text.filter(lambda s: "\\" not in s),
        st.booleans(),
    ),
    max_size=5,
)


def load_routing_bytes(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "routing.toml"
        path.write_bytes(content)
        try:
            routing = load_routing(path)
        except RoutingError as error:
            message = str(error)
        else:
            assert all(chat < 0 for chat in routing.chats(-1))
            return
    assert str(path) in message, "the message names the file"


@FUZZ
@given(rules=st.lists(rule_like, max_size=3))
def test_a_structured_but_wrong_routing_file_loads_or_raises_routing_error(rules):
    """Valid TOML, wrong types or values (positive or huge chat ids, strings for lists, unknown keys)."""
    text = "".join(
        "[[rule]]\n" + "".join(f"{key} = {toml_value(value)}\n" for key, value in rule.items())
        for rule in rules
    )
    with contextlib.suppress(tomllib.TOMLDecodeError):
        tomllib.loads(text)  # the generator may write what TOML refuses; the loader must cope either way
    load_routing_bytes(text.encode())


@FUZZ
@given(
    content=st.one_of(
        st.binary(max_size=200),
        st.just(b'[[rule]]\nchat_id = -1\nlanguages = ["\xff"]\n'),
        st.just(b"x = " + b"[" * 5000),
    )
)
def test_any_bytes_as_a_routing_file_load_or_raise_routing_error(content):
    """Not UTF-8 is a clear RoutingError too, not a UnicodeDecodeError."""
    load_routing_bytes(content)
