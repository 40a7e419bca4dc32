"""Shared pieces of the coordinators' end-to-end tests: staff members, card buttons, commands, and what
Beacon recorded about them (case state, audit trail)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.app import get_database
from bot.domain.models import CaseStatus
from tests.e2e.conftest import Harness
from tests.e2e.intake_flow import Plan, store
from tests.e2e.reporter import Reporter
from tests.e2e.test_alert_delivery import (
    LOW,
    cards_of,
    delivered,
    file_report,
    runner,
    ticket,
    topics_of,
)

JSON = dict[str, Any]
NOT_ALLOWED = "You are not allowed to do this."
INACTIVE = "This button is no longer active."
NOT_POSSIBLE = "This change is not possible now."
DONE = "Done."
ELSEWHERE = "This command is not available here."
SENT_PRIVATELY = "Sent to you privately."


async def quick(h: Harness) -> None:
    """Switch off the pacing that only slows a test: the sandbox's rate limits and the alert dispatcher's
    own per-minute budget (tested in test_alert_delivery)."""
    await h.sb.set_limits(enabled=False)
    runner(h).dispatcher.per_minute = 10_000


# --- cases and cards ---------------------------------------------------------------------------------


async def open_case(h: Harness, plan: Plan = LOW, **user: Any) -> tuple[Reporter, str]:
    """A new reporter files a report and its card reaches the group; return them and the case id."""
    r, case_id = await file_report(h, plan, **user)
    await delivered(h, case_id)
    return r, case_id


async def settled(h: Harness, case_id: str) -> None:
    """Wait until every alert and card refresh of the case has been sent (or dead-lettered)."""

    async def done() -> bool:
        rows = await get_database(h.app).execute_fetchall(
            "SELECT COUNT(*) FROM outbox WHERE case_id = ? AND sent_at IS NULL AND dead_at IS NULL",
            (case_id,),
        )
        ((count,),) = rows
        return int(count) == 0

    await h.sb.wait_until(done, timeout=15)


async def the_card(h: Harness, case_id: str) -> JSON:
    """The case's ticket card in the group, as it shows now (not a copy shown by /case)."""
    card_id = (await ticket(h, case_id)).card_message_id
    (card,) = [m for m in await cards_of(h.sb, h.group_id, case_id) if m["message_id"] == card_id]
    return card


async def settled_card(h: Harness, case_id: str) -> JSON:
    await settled(h, case_id)
    return await the_card(h, case_id)


async def thread_of(h: Harness, case_id: str) -> int:
    (topic,) = await topics_of(h.sb, h.group_id, case_id)
    return int(topic["message_thread_id"])


def buttons(message: JSON) -> list[tuple[str, str]]:
    """(label, callback data) of each inline button of a message, row by row."""
    markup = message.get("reply_markup") or {}
    return [(b["text"], b.get("callback_data", "")) for row in markup.get("inline_keyboard", []) for b in row]


def card_line(card: JSON, prefix: str) -> str:
    """The card's line starting with `prefix` (e.g. "Status:")."""
    (line,) = [line for line in str(card["text"]).split("\n") if line.startswith(prefix)]
    return line


@dataclass(frozen=True)
class CaseState:
    status: CaseStatus
    assignee_id: int | None
    closing_reason: str | None


async def state(h: Harness, case_id: str) -> CaseState:
    case = await store(h).get_case(case_id)
    assert case is not None
    return CaseState(case.status, case.assignee_id, case.closing_reason)


async def audit_rows(h: Harness) -> list[tuple[int, int | None, str, str | None, str]]:
    """(id, actor, action, case id, details) of every audit entry, oldest first."""
    rows = await get_database(h.app).execute_fetchall(
        "SELECT id, actor_id, action, case_id, details FROM audit_log ORDER BY id"
    )
    return [(int(r[0]), r[1], str(r[2]), r[3], str(r[4])) for r in rows]


async def audit_count(h: Harness) -> int:
    return len(await audit_rows(h))


# --- staff -------------------------------------------------------------------------------------------


async def member(h: Harness, first_name: str, *, chat_id: int | None = None, **user: Any) -> int:
    """A new Telegram account that joins the coordinators' group (or `chat_id`) as a plain member."""
    created = await h.sb.create_user(first_name, language_code="en", **user)
    await h.sb.set_member(chat_id or h.group_id, created["id"], "member")
    return int(created["id"])


async def grant(h: Harness, user_id: int, role: str) -> None:
    """The admin grants `role`, privately with the bot (keeps the group's message budget for the test)."""
    reply = await say(h, h.coordinator_id, f"/grant {user_id} {role}", private=True)
    assert reply["text"] == f"Done: {user_id} is now {role}."


async def revoke(h: Harness, user_id: int) -> None:
    reply = await say(h, h.coordinator_id, f"/revoke {user_id}", private=True)
    assert reply["text"] == f"Done: {user_id} has no role now."


def is_watch_notice(message: JSON) -> bool:
    """A private notice to admins that someone joined or left the coordinators' group."""
    return str(message.get("text", "")).endswith(
        ("joined the coordinators' group.", "left the coordinators' group.")
    )


# --- acting ------------------------------------------------------------------------------------------


async def press(
    h: Harness,
    user_id: int,
    case_id: str,
    data: str,
    *,
    forge: bool = False,
    chat_id: int | None = None,
    message_id: int | None = None,
) -> JSON:
    """`user_id` presses the button `data` on the case's card (or `message_id` in `chat_id`); return the
    bot's answer to the callback query once it has answered."""
    if message_id is None:
        await settled(h, case_id)  # a real press is on the card as it shows now
        message_id = int((await the_card(h, case_id))["message_id"])
    result = await h.sb.press_button(
        user_id, message_id, chat_id=chat_id or h.group_id, data=data, forge=forge
    )

    async def answered() -> JSON | None:
        answer: JSON = await h.sb.callback_answer(result["callback_query_id"])
        return answer if answer["answered"] else None

    found: JSON = await h.sb.wait_until(answered, timeout=15)
    return found


async def say(
    h: Harness,
    user_id: int,
    text: str,
    *,
    private: bool = False,
    chat_id: int | None = None,
    thread_id: int | None = None,
    reply_to: int | None = None,
) -> JSON:
    """`user_id` sends `text` in the group (or `chat_id`, or privately to the bot); return the bot's reply
    to it (in a group: the bot message quoting it)."""
    if private:
        sent = await h.sb.send_text(user_id, text, bot_id=h.bot_id)
        sent_id = sent["message"]["message_id"]
        reply: JSON = await h.sb.wait_for_message(
            user_id,
            bot_id=h.bot_id,
            after_message_id=sent_id,
            predicate=lambda m: not is_watch_notice(m),
            timeout=15,
        )
        return reply
    chat = chat_id or h.group_id
    sent = await h.sb.send_text(
        user_id, text, chat_id=chat, message_thread_id=thread_id, reply_to_message_id=reply_to
    )
    sent_id = sent["message"]["message_id"]
    reply = await h.sb.wait_for_message(
        chat,
        after_message_id=sent_id,
        predicate=lambda m: (m.get("reply_to_message") or {}).get("message_id") == sent_id,
        timeout=15,
    )
    return reply


async def bot_messages_after(h: Harness, chat_id: int, after: int, *, private: bool = False) -> list[JSON]:
    """The bot's messages in a chat newer than message id `after`."""
    messages = await h.sb.messages(chat_id, bot_id=h.bot_id if private else None)
    return [m for m in messages if m["from"]["is_bot"] and m["message_id"] > after]


async def last_message_id(h: Harness, chat_id: int, *, private: bool = False) -> int:
    messages = await h.sb.messages(chat_id, bot_id=h.bot_id if private else None)
    return max([m["message_id"] for m in messages], default=0)


async def handled_so_far(h: Harness, user_id: int, chat_id: int | None = None) -> None:
    """Wait until the bot has handled everything sent before in this chat: one chat's updates are handled
    in order, so its answer to a command addressed to it by name comes after every earlier one of the chat
    (other chats: ``handled_everything_sent``)."""
    reply = await say(h, user_id, "/ping@beacon_test_bot", chat_id=chat_id)
    assert reply["text"] == ELSEWHERE
