"""Routing: cases matching a rule land in another coordinators' group, where its staff can act on them."""

from __future__ import annotations

from pathlib import Path

from bot.app import build_application, start_application, stop_application
from tests.e2e.casework_flow import open_case, quick, settled, ticket
from tests.e2e.conftest import Harness
from tests.e2e.intake_flow import Plan


async def test_a_case_matching_a_rule_goes_to_the_routed_group_and_others_to_the_default(
    harness: Harness, tmp_path: Path
) -> None:
    """A Vietnamese reporter's case goes to the Vietnamese desk's group; an English one to the default."""
    h = harness
    desk = await h.sb.create_group(
        "Vietnamese desk",
        forum=True,
        admins=[h.coordinator_id],
        bots=[{"bot_id": h.bot_id, "admin": True, "can_manage_topics": True}],
    )
    rules = tmp_path / "routing.toml"
    rules.write_text(f'[[rule]]\nchat_id = {desk["id"]}\nlanguages = ["vi"]\n', encoding="utf-8")
    await stop_application(h.app)
    h.settings = h.settings.model_copy(update={"routing": rules})
    h.app = build_application(h.settings)
    await start_application(h.app)
    await quick(h)

    _r1, vietnamese = await open_case(h, Plan(), language_code="vi")
    _r2, english = await open_case(h, Plan(), language_code="en")
    await settled(h, vietnamese)
    await settled(h, english)
    routed = await ticket(h, vietnamese)
    default = await ticket(h, english)
    assert routed.chat_id == desk["id"]
    assert default.chat_id == h.group_id
    assert routed.card_message_id is not None

    # Staff act on the routed card in its own group.
    result = await h.sb.press_button(
        h.coordinator_id, routed.card_message_id, chat_id=desk["id"], data=f"w:claim:{vietnamese}"
    )
    answer = await h.sb.wait_until(lambda: _answered(h, result["callback_query_id"]), timeout=10)
    assert answer["text"] == "Done."


async def _answered(h: Harness, query_id: str):
    answer = await h.sb.callback_answer(query_id)
    return answer if answer["answered"] else None
