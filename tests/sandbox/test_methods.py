"""Every Bot API method the sandbox implements, called as a bot would call it."""

from __future__ import annotations

import pytest

from sandbox import SandboxClient
from sandbox.samples import sample_png
from tests.sandbox.conftest import BOT_ID, BotApi, drain

INLINE = {"inline_keyboard": [[{"text": "Open", "callback_data": "open:1"}]]}


async def test_get_me_describes_the_bot(api: BotApi):
    """getMe returns the bot's User with the capability flags."""
    me = await api.call("getMe")
    assert me["id"] == BOT_ID
    assert me["is_bot"] is True
    assert me["can_join_groups"] is True
    assert "username" in me


async def test_get_updates_returns_a_humans_message(api: BotApi, sb: SandboxClient, alice):
    """getUpdates delivers a message a human sent, with update_id and the message."""
    updates = await api.call("getUpdates", timeout=0)
    assert len(updates) == 1
    message = updates[0]["message"]
    assert message["text"] == "/start"
    assert message["from"]["id"] == alice["id"]
    assert isinstance(updates[0]["update_id"], int)


async def test_set_webhook_and_get_webhook_info_report_the_url(api: BotApi):
    """setWebhook stores the URL, getWebhookInfo reports it and deleteWebhook clears it."""
    assert await api.call("setWebhook", url="http://127.0.0.1:9/hook", max_connections=5) is True
    info = await api.call("getWebhookInfo")
    assert info["url"] == "http://127.0.0.1:9/hook"
    assert info["max_connections"] == 5
    assert await api.call("deleteWebhook", drop_pending_updates=True) is True
    assert (await api.call("getWebhookInfo"))["url"] == ""


async def test_send_message_returns_the_message(api: BotApi, alice):
    """sendMessage returns a Message from the bot in the private chat, with text and markup."""
    message = await api.call("sendMessage", chat_id=alice["id"], text="Hello", reply_markup=INLINE)
    assert message["from"]["id"] == BOT_ID
    assert message["chat"] == {
        "id": alice["id"],
        "type": "private",
        "first_name": "Alice",
        "username": "alice",
    }
    assert message["text"] == "Hello"
    assert message["reply_markup"] == INLINE
    assert message["message_id"] > 1


async def test_send_message_replies_to_a_message(api: BotApi, alice, sb: SandboxClient):
    """reply_parameters attach the replied-to message."""
    question = await sb.send_text(alice["id"], "question?", bot_id=BOT_ID)
    reply_to = question["message"]["message_id"]
    message = await api.call(
        "sendMessage", chat_id=alice["id"], text="answer", reply_parameters={"message_id": reply_to}
    )
    assert message["reply_to_message"]["text"] == "question?"


async def test_reply_to_missing_message_is_refused(api: BotApi, alice):
    """Replying to a message that does not exist fails unless allowed."""
    answer = await api.json("sendMessage", chat_id=alice["id"], text="x", reply_to_message_id=999)
    assert answer.description == "Bad Request: message to be replied not found"
    ok = await api.json(
        "sendMessage",
        chat_id=alice["id"],
        text="x",
        reply_to_message_id=999,
        allow_sending_without_reply=True,
    )
    assert ok.ok


async def test_edit_message_text_changes_text_and_markup(api: BotApi, alice, sb: SandboxClient):
    """editMessageText replaces the text, sets edit_date and the human sees the new text."""
    sent = await api.call("sendMessage", chat_id=alice["id"], text="v1", reply_markup=INLINE)
    edited = await api.call(
        "editMessageText",
        chat_id=alice["id"],
        message_id=sent["message_id"],
        text="<b>v2</b>",
        parse_mode="HTML",
    )
    assert edited["text"] == "v2"
    assert edited["entities"] == [{"type": "bold", "offset": 0, "length": 2}]
    assert "reply_markup" not in edited
    assert "edit_date" in edited
    seen = await sb.messages(alice["id"], bot_id=BOT_ID)
    assert seen[-1]["text"] == "v2"


async def test_edit_message_reply_markup_replaces_the_keyboard(api: BotApi, alice):
    """editMessageReplyMarkup swaps the inline keyboard and can remove it."""
    sent = await api.call("sendMessage", chat_id=alice["id"], text="pick", reply_markup=INLINE)
    other = {"inline_keyboard": [[{"text": "Close", "callback_data": "close"}]]}
    edited = await api.call(
        "editMessageReplyMarkup", chat_id=alice["id"], message_id=sent["message_id"], reply_markup=other
    )
    assert edited["reply_markup"] == other
    removed = await api.call("editMessageReplyMarkup", chat_id=alice["id"], message_id=sent["message_id"])
    assert "reply_markup" not in removed


async def test_edit_message_caption_changes_a_photo_caption(api: BotApi, alice):
    """editMessageCaption replaces a media message's caption; a text message has none to edit."""
    photo = await api.upload(
        "sendPhoto", "photo", sample_png(8, 8), "p.png", "image/png", chat_id=alice["id"], caption="old"
    )
    mid = photo.result["message_id"]
    edited = await api.call("editMessageCaption", chat_id=alice["id"], message_id=mid, caption="new")
    assert edited["caption"] == "new"
    text = await api.call("sendMessage", chat_id=alice["id"], text="t")
    answer = await api.json(
        "editMessageCaption", chat_id=alice["id"], message_id=text["message_id"], caption="c"
    )
    assert answer.description == "Bad Request: there is no caption in the message to edit"


async def test_delete_message_removes_it(api: BotApi, alice, sb: SandboxClient):
    """deleteMessage returns true and the message disappears for the human."""
    sent = await api.call("sendMessage", chat_id=alice["id"], text="gone soon")
    assert await api.call("deleteMessage", chat_id=alice["id"], message_id=sent["message_id"]) is True
    texts = [m.get("text") for m in await sb.messages(alice["id"], bot_id=BOT_ID)]
    assert "gone soon" not in texts


async def test_delete_messages_removes_several_and_skips_missing(api: BotApi, alice, sb: SandboxClient):
    """deleteMessages deletes the ones it finds and ignores unknown ids (form-encoded list)."""
    ids = [(await api.call("sendMessage", chat_id=alice["id"], text=f"m{i}"))["message_id"] for i in range(3)]
    assert (await api.form("deleteMessages", chat_id=alice["id"], message_ids=[*ids, 9999])).result is True
    texts = [m.get("text") for m in await sb.messages(alice["id"], bot_id=BOT_ID)]
    assert texts == ["/start"]


async def test_answer_callback_query_records_the_answer(api: BotApi, alice, sb: SandboxClient):
    """answerCallbackQuery succeeds for a fresh query and its text is recorded."""
    sent = await api.call("sendMessage", chat_id=alice["id"], text="pick", reply_markup=INLINE)
    pressed = await sb.press_button(alice["id"], sent["message_id"], data="open:1", bot_id=BOT_ID)
    query_id = pressed["callback_query_id"]
    assert await api.call("answerCallbackQuery", callback_query_id=query_id, text="Opened") is True
    assert (await sb.callback_answer(query_id))["text"] == "Opened"


async def test_send_photo_uploads_a_file_by_multipart(api: BotApi, alice, sb: SandboxClient):
    """sendPhoto with a multipart upload stores the bytes and reports the image size."""
    png = sample_png(20, 10)
    answer = await api.upload(
        "sendPhoto", "photo", png, "wall.png", "image/png", chat_id=alice["id"], caption="a wall"
    )
    sizes = answer.result["photo"]
    assert sizes[-1]["width"] == 20
    assert sizes[-1]["height"] == 10
    assert answer.result["caption"] == "a wall"
    assert await sb.file_bytes(sizes[-1]["file_id"]) == png


async def test_send_photo_by_file_id_reuses_the_file(api: BotApi, alice):
    """sendPhoto with a known file_id sends the same file again; an unknown id is refused."""
    first = await api.upload(
        "sendPhoto", "photo", sample_png(8, 8), "a.png", "image/png", chat_id=alice["id"]
    )
    file_id = first.result["photo"][-1]["file_id"]
    again = await api.call("sendPhoto", chat_id=alice["id"], photo=file_id)
    assert again["photo"][-1]["file_id"] == file_id
    bad = await api.json("sendPhoto", chat_id=alice["id"], photo="no-such-file")
    assert bad.description == "Bad Request: wrong file identifier/HTTP URL specified"


async def test_send_document_keeps_name_and_mime_type(api: BotApi, alice, sb: SandboxClient):
    """sendDocument stores the upload with its file name and MIME type."""
    answer = await api.upload(
        "sendDocument", "document", b"a,b\n1,2\n", "cases.csv", "text/csv", chat_id=alice["id"]
    )
    document = answer.result["document"]
    assert document["file_name"] == "cases.csv"
    assert document["mime_type"] == "text/csv"
    assert document["file_size"] == 8
    assert await sb.file_bytes(document["file_id"]) == b"a,b\n1,2\n"


async def test_send_voice_reports_duration(api: BotApi, alice):
    """sendVoice stores an audio upload and reports its duration."""
    answer = await api.upload(
        "sendVoice", "voice", b"OggS-fake", "v.ogg", "audio/ogg", chat_id=alice["id"], duration=3
    )
    assert answer.result["voice"]["duration"] == 3
    assert answer.result["voice"]["mime_type"] == "audio/ogg"


async def test_send_location_sends_coordinates_and_refuses_impossible_ones(api: BotApi, alice):
    """sendLocation accepts form-encoded floats and refuses a latitude beyond 90."""
    message = (await api.form("sendLocation", chat_id=alice["id"], latitude=13.75, longitude=100.5)).result
    assert message["location"] == {"latitude": 13.75, "longitude": 100.5}
    bad = await api.json("sendLocation", chat_id=alice["id"], latitude=91, longitude=0)
    assert bad.description == "Bad Request: wrong coordinates specified"


async def test_copy_message_returns_an_id_and_has_no_forward_origin(
    api: BotApi, alice, forum, sb: SandboxClient
):
    """copyMessage re-sends the content as the bot's own message without any forward_origin."""
    original = await sb.send_text(alice["id"], "my story", bot_id=BOT_ID)
    copied = await api.call(
        "copyMessage",
        chat_id=forum["id"],
        from_chat_id=alice["id"],
        message_id=original["message"]["message_id"],
    )
    assert set(copied) == {"message_id"}
    seen = {m["message_id"]: m for m in await sb.messages(forum["id"])}[copied["message_id"]]
    assert seen["text"] == "my story"
    assert seen["from"]["id"] == BOT_ID
    assert "forward_origin" not in seen


async def test_forward_message_names_the_original_sender(api: BotApi, alice, forum, sb: SandboxClient):
    """forwardMessage carries forward_origin of type user naming the human who wrote it."""
    original = await sb.send_text(alice["id"], "forward me", bot_id=BOT_ID)
    forwarded = await api.call(
        "forwardMessage",
        chat_id=forum["id"],
        from_chat_id=alice["id"],
        message_id=original["message"]["message_id"],
    )
    assert forwarded["text"] == "forward me"
    assert forwarded["forward_origin"]["type"] == "user"
    assert forwarded["forward_origin"]["sender_user"]["id"] == alice["id"]
    assert forwarded["forward_origin"]["date"] == original["message"]["date"]


async def test_get_file_and_download_return_the_uploaded_bytes(api: BotApi, alice, session):
    """getFile gives a file_path whose /file/bot<token>/<path> download returns the exact bytes."""
    data = b"%PDF-1.4 evidence"
    sent = await api.upload("sendDocument", "document", data, "e.pdf", "application/pdf", chat_id=alice["id"])
    info = await api.call("getFile", file_id=sent.result["document"]["file_id"])
    assert info["file_size"] == len(data)
    async with session.get(f"{api.base_url}/file/bot{api.token}/{info['file_path']}") as response:
        assert response.status == 200
        assert await response.read() == data
    async with session.get(f"{api.base_url}/file/bot{api.token}/nope/none.bin") as response:
        assert response.status == 404


async def test_file_download_needs_a_known_token(api: BotApi, alice, session):
    """A download with an unregistered token is unauthorized."""
    sent = await api.upload("sendDocument", "document", b"x", "x.txt", "text/plain", chat_id=alice["id"])
    info = await api.call("getFile", file_id=sent.result["document"]["file_id"])
    async with session.get(f"{api.base_url}/file/bot9:bad/{info['file_path']}") as response:
        assert response.status == 401


async def test_create_forum_topic_opens_a_topic(api: BotApi, forum, sb: SandboxClient):
    """createForumTopic returns the ForumTopic and the topic appears in the world's state."""
    topic = await api.call("createForumTopic", chat_id=forum["id"], name="Case 17")
    assert topic["name"] == "Case 17"
    assert isinstance(topic["icon_color"], int)
    chat = next(c for c in (await sb.state())["chats"] if c["id"] == forum["id"])
    assert [t["name"] for t in chat["topics"]] == ["Case 17"]
    assert chat["topics"][0]["message_thread_id"] == topic["message_thread_id"]


async def test_edit_forum_topic_renames_it(api: BotApi, forum, sb: SandboxClient):
    """editForumTopic renames; renaming to the same name is TOPIC_NOT_MODIFIED."""
    topic = await api.call("createForumTopic", chat_id=forum["id"], name="Old")
    thread = topic["message_thread_id"]
    assert await api.call("editForumTopic", chat_id=forum["id"], message_thread_id=thread, name="New") is True
    chat = next(c for c in (await sb.state())["chats"] if c["id"] == forum["id"])
    assert chat["topics"][0]["name"] == "New"
    same = await api.json("editForumTopic", chat_id=forum["id"], message_thread_id=thread, name="New")
    assert same.description == "Bad Request: TOPIC_NOT_MODIFIED"


async def test_close_and_reopen_forum_topic_toggle_is_closed(api: BotApi, forum, sb: SandboxClient):
    """closeForumTopic and reopenForumTopic flip is_closed; repeating either is TOPIC_NOT_MODIFIED."""
    thread = (await api.call("createForumTopic", chat_id=forum["id"], name="T"))["message_thread_id"]

    async def is_closed() -> bool:
        chat = next(c for c in (await sb.state())["chats"] if c["id"] == forum["id"])
        return bool(chat["topics"][0]["is_closed"])

    assert await api.call("closeForumTopic", chat_id=forum["id"], message_thread_id=thread) is True
    assert await is_closed()
    again = await api.json("closeForumTopic", chat_id=forum["id"], message_thread_id=thread)
    assert again.description == "Bad Request: TOPIC_NOT_MODIFIED"
    assert await api.call("reopenForumTopic", chat_id=forum["id"], message_thread_id=thread) is True
    assert not await is_closed()


async def test_delete_forum_topic_removes_topic_and_its_messages(api: BotApi, forum, sb: SandboxClient):
    """deleteForumTopic removes the topic and every message in it."""
    thread = (await api.call("createForumTopic", chat_id=forum["id"], name="T"))["message_thread_id"]
    await api.call("sendMessage", chat_id=forum["id"], message_thread_id=thread, text="inside")
    assert await api.call("deleteForumTopic", chat_id=forum["id"], message_thread_id=thread) is True
    assert await sb.messages(forum["id"], thread_id=thread) == []
    chat = next(c for c in (await sb.state())["chats"] if c["id"] == forum["id"])
    assert chat["topics"] == []


async def test_pin_chat_message_pins_and_get_chat_shows_it(api: BotApi, forum, sb: SandboxClient):
    """pinChatMessage pins a message: the transcript lists it and getChat carries pinned_message."""
    sent = await api.call("sendMessage", chat_id=forum["id"], text="rules")
    assert await api.call("pinChatMessage", chat_id=forum["id"], message_id=sent["message_id"]) is True
    assert (await sb.transcript(forum["id"]))["pinned"] == [sent["message_id"]]
    chat = await api.call("getChat", chat_id=forum["id"])
    assert chat["pinned_message"]["text"] == "rules"
    missing = await api.json("pinChatMessage", chat_id=forum["id"], message_id=9999)
    assert missing.description == "Bad Request: message to pin not found"


async def test_set_and_get_my_commands_round_trip_per_scope(api: BotApi):
    """setMyCommands stores commands per scope and language; getMyCommands returns them."""
    commands = [{"command": "start", "description": "Start"}, {"command": "help", "description": "Help"}]
    assert (await api.form("setMyCommands", commands=commands)).result is True
    assert await api.call("getMyCommands") == commands
    assert await api.call("getMyCommands", language_code="vi") == []
    private = {"type": "all_private_chats"}
    await api.call("setMyCommands", commands=commands[:1], scope=private)
    assert await api.call("getMyCommands", scope=private) == commands[:1]
    bad = await api.json("setMyCommands", commands=[{"command": "Bad-Name", "description": "x"}])
    assert bad.description == "Bad Request: BOT_COMMAND_INVALID"


async def test_get_chat_describes_group_and_private_chat(api: BotApi, forum, alice):
    """getChat returns ChatFullInfo for a forum supergroup and for a private chat."""
    group = await api.call("getChat", chat_id=forum["id"])
    assert group["type"] == "supergroup"
    assert group["is_forum"] is True
    assert group["title"] == "Coordinators"
    private = await api.call("getChat", chat_id=alice["id"])
    assert private["type"] == "private"
    assert private["first_name"] == "Alice"


async def test_get_chat_member_reports_statuses(api: BotApi, forum, alice, sb: SandboxClient):
    """getChatMember reports creator, administrator (with rights) and left."""
    assert (await api.call("getChatMember", chat_id=forum["id"], user_id=alice["id"]))["status"] == "creator"
    me = await api.call("getChatMember", chat_id=forum["id"], user_id=BOT_ID)
    assert me["status"] == "administrator"
    assert me["can_manage_topics"] is True
    bob = await sb.create_user("Bob")
    assert (await api.call("getChatMember", chat_id=forum["id"], user_id=bob["id"]))["status"] == "left"
    missing = await api.json("getChatMember", chat_id=forum["id"], user_id=5)
    assert missing.description == "Bad Request: user not found"


async def test_get_chat_administrators_lists_creator_and_admins(api: BotApi, forum, alice, sb: SandboxClient):
    """getChatAdministrators lists the creator and the admin bot but not plain members."""
    bob = await sb.create_user("Bob")
    await sb.set_member(forum["id"], bob["id"], "member")
    admins = await api.call("getChatAdministrators", chat_id=forum["id"])
    assert sorted(a["user"]["id"] for a in admins) == sorted([alice["id"], BOT_ID])
    private = await api.json("getChatAdministrators", chat_id=alice["id"])
    assert private.status == 400


async def test_get_chat_member_count_counts_present_members(api: BotApi, forum):
    """getChatMemberCount counts the creator and the bot."""
    assert await api.call("getChatMemberCount", chat_id=forum["id"]) == 2


async def test_send_chat_action_is_accepted(api: BotApi, alice):
    """sendChatAction answers true for a chat the bot may write to."""
    assert await api.call("sendChatAction", chat_id=alice["id"], action="typing") is True


async def test_unpin_chat_message_unpins(api: BotApi, alice, sb: SandboxClient):
    """unpinChatMessage removes a pin in a private chat."""
    sent = await api.call("sendMessage", chat_id=alice["id"], text="pin")
    await api.call("pinChatMessage", chat_id=alice["id"], message_id=sent["message_id"])
    await api.call("unpinChatMessage", chat_id=alice["id"], message_id=sent["message_id"])
    assert (await sb.transcript(alice["id"], bot_id=BOT_ID))["pinned"] == []


@pytest.mark.parametrize("transport", ["json", "form"])
async def test_send_message_to_a_topic_works_in_both_transports(api: BotApi, forum, transport):
    """A topic message sent as JSON or form has message_thread_id and is_topic_message."""
    thread = (await api.call("createForumTopic", chat_id=forum["id"], name="T"))["message_thread_id"]
    call = api.json if transport == "json" else api.form
    message = (await call("sendMessage", chat_id=forum["id"], message_thread_id=thread, text="hi")).result
    assert message["message_thread_id"] == thread
    assert message["is_topic_message"] is True


async def test_topic_creation_is_announced_to_the_bot(api: BotApi, forum, sb: SandboxClient):
    """A topic a human opens arrives as a forum_topic_created service message."""
    await drain(api)
    topic = await sb.create_topic(forum["id"], "Human topic")
    updates = await api.call("getUpdates", timeout=0)
    created = [u["message"] for u in updates if "forum_topic_created" in u.get("message", {})]
    assert created[0]["forum_topic_created"]["name"] == "Human topic"
    assert created[0]["message_thread_id"] == topic["message_thread_id"]
