"""The human side through the control API: messages, edits, buttons, membership, blocking, transcripts."""

from __future__ import annotations

import pytest

from sandbox import SandboxClient
from sandbox.client import SandboxError
from tests.sandbox.conftest import BOT_ID, OTHER_BOT_ID, BotApi, drain

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def only_update(api: BotApi) -> dict:
    updates = await drain(api)
    assert len(updates) == 1, updates
    return updates[0]


async def test_command_text_carries_a_bot_command_entity(api: BotApi, sb: SandboxClient):
    """A human's "/start payload" has a bot_command entity covering "/start"."""
    bob = await sb.create_user("Bob")
    await sb.send_text(bob["id"], "/start abc", bot_id=BOT_ID)
    message = (await only_update(api))["message"]
    assert message["text"] == "/start abc"
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert message["chat"]["type"] == "private"


async def test_plain_text_has_no_entities(api: BotApi, sb: SandboxClient, alice):
    """Text not starting with / carries no entities."""
    await drain(api)
    await sb.send_text(alice["id"], "just words", bot_id=BOT_ID)
    assert "entities" not in (await only_update(api))["message"]


async def test_location_arrives_as_a_location(api: BotApi, sb: SandboxClient, alice):
    """A shared location reaches the bot with its coordinates."""
    await drain(api)
    await sb.send_location(alice["id"], 16.8, 96.15, bot_id=BOT_ID)
    assert (await only_update(api))["message"]["location"] == {"latitude": 16.8, "longitude": 96.15}


async def test_photo_sample_is_a_real_png(api: BotApi, sb: SandboxClient, alice):
    """A photo without content gets the built-in sample: real PNG bytes with the reported size."""
    await drain(api)
    await sb.send_photo(alice["id"], caption="the gate", bot_id=BOT_ID)
    message = (await only_update(api))["message"]
    assert message["caption"] == "the gate"
    size = message["photo"][-1]
    data = await sb.file_bytes(size["file_id"])
    assert data.startswith(PNG_SIGNATURE)
    assert (size["width"], size["height"]) == (160, 120)
    assert size["file_size"] == len(data)


async def test_photo_with_given_content_keeps_the_bytes(api: BotApi, sb: SandboxClient, alice):
    """A photo with content_base64 stores exactly those bytes."""
    await drain(api)
    await sb.send_photo(alice["id"], content=b"\xff\xd8\xff-jpeg", bot_id=BOT_ID)
    size = (await only_update(api))["message"]["photo"][-1]
    assert await sb.file_bytes(size["file_id"]) == b"\xff\xd8\xff-jpeg"


async def test_voice_arrives_with_duration_and_audio(api: BotApi, sb: SandboxClient, alice):
    """A voice note reaches the bot with its duration and downloadable audio."""
    await drain(api)
    await sb.send_voice(alice["id"], duration=4, bot_id=BOT_ID)
    voice = (await only_update(api))["message"]["voice"]
    assert voice["duration"] == 4
    assert len(await sb.file_bytes(voice["file_id"])) == voice["file_size"]


async def test_document_keeps_name_type_and_bytes(api: BotApi, sb: SandboxClient, alice):
    """A document reaches the bot with its file name, MIME type and bytes."""
    await drain(api)
    await sb.send_document(alice["id"], "passport.pdf", "application/pdf", b"%PDF-1.7 x", bot_id=BOT_ID)
    document = (await only_update(api))["message"]["document"]
    assert (document["file_name"], document["mime_type"]) == ("passport.pdf", "application/pdf")
    assert await sb.file_bytes(document["file_id"]) == b"%PDF-1.7 x"


async def test_contact_arrives_as_a_contact(api: BotApi, sb: SandboxClient, alice):
    """A shared contact reaches the bot with phone number and name."""
    await drain(api)
    await sb.send_contact(alice["id"], "+66 800 000 000", "Mother", bot_id=BOT_ID)
    assert (await only_update(api))["message"]["contact"] == {
        "phone_number": "+66 800 000 000",
        "first_name": "Mother",
    }


async def test_sticker_arrives_as_a_sticker(api: BotApi, sb: SandboxClient, alice):
    """A sticker reaches the bot with its emoji."""
    await drain(api)
    await sb.send_sticker(alice["id"], "🆘", bot_id=BOT_ID)
    sticker = (await only_update(api))["message"]["sticker"]
    assert sticker["emoji"] == "🆘"
    assert sticker["type"] == "regular"


async def test_poll_arrives_as_a_poll(api: BotApi, sb: SandboxClient, alice):
    """A poll reaches the bot with its question and options."""
    await drain(api)
    await sb.send(alice["id"], bot_id=BOT_ID, poll={"question": "Safe?", "options": ["Yes", "No"]})
    poll = (await only_update(api))["message"]["poll"]
    assert poll["question"] == "Safe?"
    assert [o["text"] for o in poll["options"]] == ["Yes", "No"]


async def test_edited_message_arrives_as_edited_message(api: BotApi, sb: SandboxClient, alice):
    """A human editing their text gives the bot an edited_message update with edit_date."""
    said = await sb.send_text(alice["id"], "typo", bot_id=BOT_ID)
    await drain(api)
    await sb.edit_message(alice["id"], said["message"]["message_id"], "fixed", bot_id=BOT_ID)
    update = await only_update(api)
    assert update["edited_message"]["text"] == "fixed"
    assert update["edited_message"]["message_id"] == said["message"]["message_id"]
    assert "edit_date" in update["edited_message"]


async def test_press_button_delivers_the_buttons_data(api: BotApi, sb: SandboxClient, alice):
    """Pressing a real button (by text) sends a callback_query with that button's data and message."""
    sent = await api.call(
        "sendMessage",
        chat_id=alice["id"],
        text="Choose",
        reply_markup={
            "inline_keyboard": [[{"text": "A", "callback_data": "a"}, {"text": "B", "callback_data": "b"}]]
        },
    )
    await drain(api)
    pressed = await sb.press_button(alice["id"], sent["message_id"], button_text="B", bot_id=BOT_ID)
    query = (await only_update(api))["callback_query"]
    assert query["id"] == pressed["callback_query_id"]
    assert query["data"] == "b"
    assert query["from"]["id"] == alice["id"]
    assert query["message"]["message_id"] == sent["message_id"]
    assert query["chat_instance"]


async def test_forged_data_is_refused_without_forge_and_delivered_with_it(
    api: BotApi, sb: SandboxClient, alice
):
    """Data no button carries is refused unless forge=True, which delivers it."""
    sent = await api.call(
        "sendMessage",
        chat_id=alice["id"],
        text="x",
        reply_markup={"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]},
    )
    await drain(api)
    with pytest.raises(SandboxError, match="forge"):
        await sb.press_button(alice["id"], sent["message_id"], data="admin:delete_all", bot_id=BOT_ID)
    assert await drain(api) == []
    await sb.press_button(alice["id"], sent["message_id"], data="admin:delete_all", bot_id=BOT_ID, forge=True)
    assert (await only_update(api))["callback_query"]["data"] == "admin:delete_all"


async def test_callback_answer_is_recorded_and_a_second_answer_fails(api: BotApi, sb: SandboxClient, alice):
    """answerCallbackQuery is visible at /_sandbox/callbacks/{id}; answering again is refused."""
    sent = await api.call(
        "sendMessage",
        chat_id=alice["id"],
        text="x",
        reply_markup={"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]},
    )
    pressed = await sb.press_button(alice["id"], sent["message_id"], data="a", bot_id=BOT_ID)
    query_id = pressed["callback_query_id"]
    unanswered = {"answered": False, "text": None, "show_alert": False, "url": None}
    assert await sb.callback_answer(query_id) == unanswered
    await api.form("answerCallbackQuery", callback_query_id=query_id, text="Saved", show_alert=True)
    assert await sb.callback_answer(query_id) == {
        "answered": True,
        "text": "Saved",
        "show_alert": True,
        "url": None,
    }
    again = await api.json("answerCallbackQuery", callback_query_id=query_id)
    assert again.status == 400
    assert (
        again.description
        == "Bad Request: query is too old and response timeout expired or query ID is invalid"
    )


async def test_callback_query_expires_after_15_minutes(api: BotApi, sb: SandboxClient, alice):
    """A callback query older than 15 minutes (sandbox clock) can no longer be answered."""
    sent = await api.call(
        "sendMessage",
        chat_id=alice["id"],
        text="x",
        reply_markup={"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]},
    )
    pressed = await sb.press_button(alice["id"], sent["message_id"], data="a", bot_id=BOT_ID)
    await sb.advance_clock(15 * 60 + 1)
    answer = await api.json("answerCallbackQuery", callback_query_id=pressed["callback_query_id"])
    assert answer.status == 400


async def test_bot_added_and_removed_gets_my_chat_member(api: BotApi, sb: SandboxClient, alice):
    """Adding the bot to a group and removing it emit my_chat_member with old and new status."""
    group = await sb.create_group("Later", forum=False, admins=[alice["id"]])
    await drain(api)
    await sb.set_member(group["id"], BOT_ID, "member")
    updates = await drain(api)
    added = [u["my_chat_member"] for u in updates if "my_chat_member" in u]
    assert len(added) == 1
    assert (added[0]["old_chat_member"]["status"], added[0]["new_chat_member"]["status"]) == (
        "left",
        "member",
    )
    assert added[0]["chat"]["id"] == group["id"]
    joined = [u["message"] for u in updates if "new_chat_members" in u.get("message", {})]
    assert joined[0]["new_chat_members"][0]["id"] == BOT_ID
    await sb.set_member(group["id"], BOT_ID, "kicked")
    removed = [u["my_chat_member"] for u in await drain(api) if "my_chat_member" in u]
    assert removed[0]["new_chat_member"]["status"] == "kicked"
    answer = await api.json("sendMessage", chat_id=group["id"], text="x")
    assert answer.description == "Forbidden: bot was kicked from the supergroup chat"


async def test_blocked_user_makes_sends_fail_with_403(api: BotApi, sb: SandboxClient, alice):
    """A user who blocked the bot gives 403 "bot was blocked by the user"; unblocking restores delivery."""
    await sb.block_bot(alice["id"], BOT_ID)
    answer = await api.json("sendMessage", chat_id=alice["id"], text="x")
    assert answer.status == 403
    assert answer.description == "Forbidden: bot was blocked by the user"
    await sb.block_bot(alice["id"], BOT_ID, blocked=False)
    assert (await api.json("sendMessage", chat_id=alice["id"], text="x")).ok


async def test_transcript_hides_deleted_messages(api: BotApi, sb: SandboxClient, alice):
    """The transcript shows what the human sees now: deleted messages are gone."""
    keep = await api.call("sendMessage", chat_id=alice["id"], text="keep")
    drop = await api.call("sendMessage", chat_id=alice["id"], text="drop")
    await api.call("deleteMessage", chat_id=alice["id"], message_id=drop["message_id"])
    ids = [m["message_id"] for m in await sb.messages(alice["id"], bot_id=BOT_ID)]
    assert keep["message_id"] in ids
    assert drop["message_id"] not in ids


async def test_reply_keyboard_shows_in_transcript_and_remove_clears_it(api: BotApi, sb: SandboxClient, alice):
    """A ReplyKeyboardMarkup appears as transcript.keyboard; ReplyKeyboardRemove clears it."""
    board = {"keyboard": [[{"text": "Report"}], [{"text": "Help"}]], "resize_keyboard": True}
    await api.form("sendMessage", chat_id=alice["id"], text="Menu", reply_markup=board)
    assert (await sb.transcript(alice["id"], bot_id=BOT_ID))["keyboard"] == board
    await api.form("sendMessage", chat_id=alice["id"], text="Bye", reply_markup={"remove_keyboard": True})
    assert (await sb.transcript(alice["id"], bot_id=BOT_ID))["keyboard"] is None


async def test_one_time_keyboard_goes_away_after_the_human_answers(api: BotApi, sb: SandboxClient, alice):
    """A one_time_keyboard disappears once the human sends a text."""
    board = {"keyboard": [["Yes", "No"]], "one_time_keyboard": True}
    await api.json("sendMessage", chat_id=alice["id"], text="OK?", reply_markup=board)
    await sb.send_text(alice["id"], "Yes", bot_id=BOT_ID)
    assert (await sb.transcript(alice["id"], bot_id=BOT_ID))["keyboard"] is None


async def test_forum_topic_message_has_thread_fields(api: BotApi, sb: SandboxClient, forum, alice):
    """A human's message in a forum topic has message_thread_id and is_topic_message."""
    topic = await sb.create_topic(forum["id"], "Intake")
    thread = topic["message_thread_id"]
    await drain(api)
    await sb.send_text(alice["id"], "in topic", chat_id=forum["id"], message_thread_id=thread)
    message = (await only_update(api))["message"]
    assert message["message_thread_id"] == thread
    assert message["is_topic_message"] is True
    assert message["chat"]["is_forum"] is True
    in_thread = await sb.messages(forum["id"], thread_id=thread)
    assert [m.get("text") for m in in_thread][-1] == "in topic"


async def test_human_in_unknown_topic_is_refused(sb: SandboxClient, forum, alice):
    """Writing into a topic that does not exist is a control-API 404."""
    with pytest.raises(SandboxError) as raised:
        await sb.send_text(alice["id"], "x", chat_id=forum["id"], message_thread_id=999)
    assert raised.value.status == 404


async def test_group_message_goes_to_every_bot_in_the_group(
    api: BotApi, other_api: BotApi, sb: SandboxClient, alice
):
    """A human's group message reaches each bot that is a member, and not others."""
    group = await sb.create_group(
        "Both", forum=False, admins=[alice["id"]], bots=[{"bot_id": BOT_ID}, {"bot_id": OTHER_BOT_ID}]
    )
    await drain(api)
    await drain(other_api)
    await sb.send_text(alice["id"], "hello all", chat_id=group["id"])
    assert (await only_update(api))["message"]["text"] == "hello all"
    assert (await only_update(other_api))["message"]["chat"]["id"] == group["id"]


async def test_group_migration_moves_the_chat_to_a_new_id(api: BotApi, sb: SandboxClient, alice):
    """After migration the old id answers migrate_to_chat_id, the new id works, service messages arrive."""
    group = await sb.create_group(
        "Basic", forum=False, supergroup=False, admins=[alice["id"]], bots=[{"bot_id": BOT_ID}]
    )
    assert group["type"] == "group"
    assert (await api.json("sendMessage", chat_id=group["id"], text="before")).ok
    await drain(api)
    new_id = await sb.migrate_group(group["id"])
    assert new_id != group["id"]
    old = await api.form("sendMessage", chat_id=group["id"], text="x")
    assert old.status == 400
    assert old.description == "Bad Request: group chat was upgraded to a supergroup chat"
    assert old.body["parameters"] == {"migrate_to_chat_id": new_id}
    sent = await api.call("sendMessage", chat_id=new_id, text="after")
    assert sent["chat"]["type"] == "supergroup"
    messages = [u["message"] for u in await drain(api)]
    assert messages[0]["migrate_to_chat_id"] == new_id
    assert messages[0]["chat"]["id"] == group["id"]
    assert messages[1]["migrate_from_chat_id"] == group["id"]
    assert messages[1]["chat"]["id"] == new_id


async def test_a_supergroup_cannot_migrate(sb: SandboxClient, forum):
    """Only a basic group can be upgraded."""
    with pytest.raises(SandboxError):
        await sb.migrate_group(forum["id"])


async def test_several_bots_need_bot_id_for_private_messages(sb: SandboxClient):
    """With two bots registered, a private message without bot_id is refused."""
    bob = await sb.create_user("Bob")
    with pytest.raises(SandboxError, match="bot_id is required"):
        await sb.send_text(bob["id"], "hi")


async def test_a_queued_update_keeps_the_message_as_it_was_sent(api: BotApi, sb: SandboxClient, alice):
    """An update queued before the human edits the message still shows the original text."""
    await drain(api)
    said = await sb.send_text(alice["id"], "/report first", bot_id=BOT_ID)
    await sb.edit_message(alice["id"], said["message"]["message_id"], "second", bot_id=BOT_ID)
    original, edited = await drain(api)
    assert original["message"]["text"] == "/report first"
    assert "edit_date" not in original["message"]
    assert original["message"]["entities"][0]["type"] == "bot_command"
    assert edited["edited_message"]["text"] == "second"
    assert "entities" not in edited["edited_message"]


async def test_a_queued_callback_keeps_the_message_as_it_was_pressed(api: BotApi, sb: SandboxClient, alice):
    """A callback_query queued before the bot edits the message carries the message as it was."""
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    sent = await api.call("sendMessage", chat_id=alice["id"], text="before", reply_markup=markup)
    await drain(api)
    await sb.press_button(alice["id"], sent["message_id"], data="a", bot_id=BOT_ID)
    await api.call("editMessageText", chat_id=alice["id"], message_id=sent["message_id"], text="after")
    query = (await only_update(api))["callback_query"]
    assert query["message"]["text"] == "before"
    assert query["message"]["reply_markup"] == markup
