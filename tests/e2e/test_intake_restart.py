"""A reporter in mid-flow continues where they were after the bot restarts (write-through persistence)."""

from __future__ import annotations

from dataclasses import replace

from bot.app import build_application, start_application, stop_application
from handlers.intake.draft import Step
from tests.e2e.conftest import Harness, restart_bot
from tests.e2e.intake_flow import Plan, Walk, case_by_receipt, case_ids, new_reporter, today_utc


async def test_a_report_survives_a_restart_of_the_bot_in_the_middle(harness: Harness) -> None:
    """Answers given before a restart, one given while the bot is down, and those after all end up in
    the one submitted case."""
    h = harness
    r = await new_reporter(h, "zh-hans")
    plan = Plan(
        reporter_type="self",
        victim=True,
        victim_photo=False,
        conditions=("locked_in", "sexual_abuse", "no_food_or_care", "violence"),
        details=("After the restart: they moved us last night.",),
        photos=1,
    )
    walk = Walk(r, plan)
    await walk.begin()
    await walk.until(Step.CONDITIONS)
    await r.toggle(Step.CONDITIONS.value, "locked_in", on=True)

    await restart_bot(h)
    await r.toggle(Step.CONDITIONS.value, "sexual_abuse", on=True)

    # Pressed while the bot is down: Telegram keeps the update until the next bot fetches it.
    await stop_application(h.app)
    await r.press(Step.CONDITIONS.value, "no_food_or_care", expect_next=False)
    h.app = build_application(h.settings)
    await start_application(h.app)
    await r.toggle(Step.CONDITIONS.value, "violence", on=True)
    conditions = await r.question(Step.CONDITIONS.value)
    ticked = [
        b["callback_data"]
        for row in conditions["reply_markup"]["inline_keyboard"]
        for b in row
        if b["text"].startswith("✅")
    ]
    assert ticked == [
        "s:conditions:locked_in",
        "s:conditions:violence",
        "s:conditions:sexual_abuse",
        "s:conditions:no_food_or_care",
    ]

    walk.plan = replace(plan, conditions=())  # all ticked above
    await walk.until(Step.REVIEW, start=Step.CONDITIONS)
    receipt = await walk.submit()

    case = await case_by_receipt(h, receipt["text"])
    assert await case_ids(h) == [case.case_id]
    assert case.report == plan.report("zh_Hans", today_utc())
    assert case.report.victim.name == plan.victim_name, "answered before the restart"
    assert case.report.place.details == plan.place_text, "answered before the restart"
    assert case.report.details == plan.details[0], "answered after the restart"
    assert case.media_count == 1


async def test_words_are_in_the_database_before_the_reporter_is_told_they_were_noted(
    harness: Harness, monkeypatch
) -> None:
    """At the moment the bot sends "Noted", the reporter's words are already written: a stop right after it
    (before the update's end) cannot lose words the reporter was told were kept."""
    import aiosqlite

    from bot.crypto import Keyring
    from sandbox.botapi import METHODS
    from storage.conversations import ConversationStore

    h = harness
    marker = "They took our passports on the first day."
    stored_at_noted: list[bool] = []

    async def stored() -> bool:
        async with aiosqlite.connect(f"file:{h.settings.database}?mode=ro", uri=True) as conn:
            every_user = await ConversationStore(
                conn, Keyring(h.settings.secret_key_bytes())
            ).load_user_data()
        return marker in repr(every_user)

    original = METHODS["sendmessage"]

    async def send_message(world, account, params):
        if (params.str("text") or "").startswith("Noted."):
            stored_at_noted.append(await stored())
        return await original(world, account, params)

    monkeypatch.setitem(METHODS, "sendmessage", send_message)
    r = await new_reporter(h, "en")
    walk = Walk(r, Plan())
    await walk.begin()
    await walk.until(Step.DETAILS)
    after = await r.last_id()
    await r.send(marker)
    await r.reply_after(after, lambda m: m.get("text", "").startswith("Noted."))
    assert stored_at_noted == [True], "the words were not yet written when the reporter was told 'Noted'"
