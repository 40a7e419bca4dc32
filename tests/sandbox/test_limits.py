"""Telegram's limits and refusals, with Telegram's own texts."""

from __future__ import annotations

import pytest

from sandbox import SandboxClient, SandboxServer
from tests.sandbox.conftest import BOT_ID, BotApi

DAY = 24 * 3600


def keyboard(*rows: list[tuple[str, str]]) -> dict:
    return {"inline_keyboard": [[{"text": t, "callback_data": d} for t, d in row] for row in rows]}


# ---------------------------------------------------------------------------------------------- text sizes


async def test_text_of_4096_characters_is_accepted(api: BotApi, alice):
    """A text of exactly 4096 characters is sent."""
    message = (await api.form("sendMessage", chat_id=alice["id"], text="a" * 4096)).result
    assert len(message["text"]) == 4096


async def test_text_of_4097_characters_is_too_long(api: BotApi, alice):
    """A text of 4097 characters is refused with "message is too long"."""
    answer = await api.json("sendMessage", chat_id=alice["id"], text="a" * 4097)
    assert answer.status == 400
    assert answer.description == "Bad Request: message is too long"


async def test_text_length_counts_after_entity_parsing(api: BotApi, alice):
    """HTML tags do not count toward the 4096 limit: only the parsed text does."""
    answer = await api.json(
        "sendMessage", chat_id=alice["id"], text=f"<b>{'a' * 4096}</b>", parse_mode="HTML"
    )
    assert answer.ok


@pytest.mark.parametrize("text", ["", "   ", "<b></b>"])
async def test_empty_text_is_refused(api: BotApi, alice, text):
    """An empty (or empty after parsing) text is refused with "message text is empty"."""
    answer = await api.form("sendMessage", chat_id=alice["id"], text=text, parse_mode="HTML")
    assert answer.status == 400
    assert answer.description == "Bad Request: message text is empty"


async def test_caption_of_1024_is_accepted_and_1025_is_too_long(api: BotApi, alice):
    """A caption of 1024 characters is fine; 1025 gets "message caption is too long"."""
    photo = await api.upload(
        "sendPhoto", "photo", b"\x89PNG\r\n\x1a\n", "p.png", "image/png", chat_id=alice["id"]
    )
    file_id = photo.result["photo"][0]["file_id"]
    ok = await api.json("sendPhoto", chat_id=alice["id"], photo=file_id, caption="c" * 1024)
    assert ok.result["caption"] == "c" * 1024
    long = await api.json("sendPhoto", chat_id=alice["id"], photo=file_id, caption="c" * 1025)
    assert long.status == 400
    assert long.description == "Bad Request: message caption is too long"


# ---------------------------------------------------------------------------------------------- keyboards


async def test_callback_data_of_64_bytes_is_accepted(api: BotApi, alice):
    """callback_data of exactly 64 bytes (32 two-byte characters) is accepted."""
    data = "é" * 32
    assert len(data.encode()) == 64
    answer = await api.form(
        "sendMessage", chat_id=alice["id"], text="x", reply_markup=keyboard([("b", data)])
    )
    assert answer.result["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == data


async def test_callback_data_of_65_bytes_is_button_data_invalid(api: BotApi, alice):
    """callback_data of 33 characters but 65 bytes (one multi-byte character) is BUTTON_DATA_INVALID."""
    data = "é" + "a" * 63
    assert len(data) == 64
    assert len(data.encode()) == 65
    answer = await api.form(
        "sendMessage", chat_id=alice["id"], text="x", reply_markup=keyboard([("b", data)])
    )
    assert answer.status == 400
    assert answer.description == "Bad Request: BUTTON_DATA_INVALID"


async def test_empty_callback_data_is_button_data_invalid(api: BotApi, alice):
    """Empty callback_data is BUTTON_DATA_INVALID."""
    answer = await api.json("sendMessage", chat_id=alice["id"], text="x", reply_markup=keyboard([("b", "")]))
    assert answer.description == "Bad Request: BUTTON_DATA_INVALID"


async def test_eight_buttons_a_row_are_accepted_nine_are_refused(api: BotApi, alice):
    """A row of 8 inline buttons is fine; a row of 9 is refused."""
    eight = keyboard([(str(i), str(i)) for i in range(8)])
    assert (await api.json("sendMessage", chat_id=alice["id"], text="x", reply_markup=eight)).ok
    nine = keyboard([(str(i), str(i)) for i in range(9)])
    answer = await api.json("sendMessage", chat_id=alice["id"], text="x", reply_markup=nine)
    assert answer.status == 400
    assert answer.description == "Bad Request: BUTTONS_TOO_MUCH"


async def test_more_than_100_inline_buttons_are_refused(api: BotApi, alice):
    """An inline keyboard of 101 buttons (in short rows) is refused."""
    rows = [[(str(r * 2 + i), str(r * 2 + i)) for i in range(2)] for r in range(50)] + [[("x", "x")]]
    answer = await api.json("sendMessage", chat_id=alice["id"], text="x", reply_markup=keyboard(*rows))
    assert answer.description == "Bad Request: BUTTONS_TOO_MUCH"


# ---------------------------------------------------------------------------------------------- parse_mode


async def test_html_entities_use_utf16_offsets_after_an_emoji(api: BotApi, alice):
    """HTML after an emoji (two UTF-16 units) yields entities with UTF-16 offsets and lengths."""
    text = '🙂 <b>bold</b> and <a href="https://example.org">a 🔗 link</a>'
    message = (await api.form("sendMessage", chat_id=alice["id"], text=text, parse_mode="HTML")).result
    assert message["text"] == "🙂 bold and a 🔗 link"
    assert message["entities"] == [
        {"type": "bold", "offset": 3, "length": 4},
        {"type": "text_link", "url": "https://example.org", "offset": 12, "length": 9},
    ]


async def test_html_escapes_are_decoded(api: BotApi, alice):
    """&lt; &gt; &amp; in HTML become the characters they stand for."""
    message = (
        await api.json(
            "sendMessage", chat_id=alice["id"], text="1 &lt; 2 &amp;&amp; <i>x</i>", parse_mode="HTML"
        )
    ).result
    assert message["text"] == "1 < 2 && x"
    assert message["entities"] == [{"type": "italic", "offset": 9, "length": 1}]


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("<script>alert(1)</script>", 'Unsupported start tag "script"'),
        ("<b>unclosed", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", "Unmatched end tag"),
    ],
)
async def test_bad_html_cannot_be_parsed(api: BotApi, alice, text, detail):
    """Unsupported tags, unclosed and mismatched tags get "can't parse entities"."""
    answer = await api.form("sendMessage", chat_id=alice["id"], text=text, parse_mode="HTML")
    assert answer.status == 400
    assert answer.description.startswith("Bad Request: can't parse entities: ")
    assert detail in answer.description


async def test_markdown_v2_unescaped_dot_is_refused(api: BotApi, alice):
    """MarkdownV2 with an unescaped '.' is refused: the character is reserved."""
    answer = await api.json("sendMessage", chat_id=alice["id"], text="Done.", parse_mode="MarkdownV2")
    assert answer.status == 400
    assert answer.description == (
        "Bad Request: can't parse entities: "
        "Character '.' is reserved and must be escaped with the preceding '\\'"
    )


async def test_markdown_v2_escaped_dot_and_bold_are_accepted(api: BotApi, alice):
    """MarkdownV2 with '\\.' escaped and *bold* parses into text and a bold entity."""
    message = (
        await api.json("sendMessage", chat_id=alice["id"], text="*Done*\\.", parse_mode="MarkdownV2")
    ).result
    assert message["text"] == "Done."
    assert message["entities"] == [{"type": "bold", "offset": 0, "length": 4}]


async def test_unknown_parse_mode_is_refused(api: BotApi, alice):
    """A parse_mode Telegram does not know is a bad request."""
    answer = await api.json("sendMessage", chat_id=alice["id"], text="x", parse_mode="BBCode")
    assert answer.status == 400


# -------------------------------------------------------------------------------------- deletion and edits


async def test_deleting_a_47_hour_old_message_works(api: BotApi, alice, sb: SandboxClient):
    """A message younger than 48 hours can be deleted."""
    sent = await api.call("sendMessage", chat_id=alice["id"], text="x")
    await sb.advance_clock(47 * 3600)
    assert await api.call("deleteMessage", chat_id=alice["id"], message_id=sent["message_id"]) is True


async def test_deleting_a_message_older_than_48_hours_is_refused(api: BotApi, alice, sb: SandboxClient):
    """After 48 h + 1 s on the sandbox clock, deletion gets "message can't be deleted for everyone"."""
    sent = await api.call("sendMessage", chat_id=alice["id"], text="x")
    await sb.advance_clock(2 * DAY + 1)
    answer = await api.json("deleteMessage", chat_id=alice["id"], message_id=sent["message_id"])
    assert answer.status == 400
    assert answer.description == "Bad Request: message can't be deleted for everyone"


async def test_deleting_a_missing_message_is_not_found(api: BotApi, alice):
    """Deleting an unknown (or already deleted) message gets "message to delete not found"."""
    sent = await api.call("sendMessage", chat_id=alice["id"], text="x")
    await api.call("deleteMessage", chat_id=alice["id"], message_id=sent["message_id"])
    again = await api.json("deleteMessage", chat_id=alice["id"], message_id=sent["message_id"])
    assert again.description == "Bad Request: message to delete not found"
    unknown = await api.json("deleteMessage", chat_id=alice["id"], message_id=12345)
    assert unknown.description == "Bad Request: message to delete not found"


async def test_deleting_a_humans_group_message_needs_delete_rights(api: BotApi, sb: SandboxClient, alice):
    """A bot without can_delete_messages cannot delete a human's message in a group."""
    group = await sb.create_group(
        "Plain", forum=False, admins=[alice["id"]], bots=[{"bot_id": BOT_ID, "admin": False}]
    )
    said = await sb.send_text(alice["id"], "mine", chat_id=group["id"])
    answer = await api.json("deleteMessage", chat_id=group["id"], message_id=said["message"]["message_id"])
    assert answer.description == "Bad Request: message can't be deleted"


async def test_editing_a_missing_message_is_not_found(api: BotApi, alice):
    """Editing an unknown message gets "message to edit not found"."""
    answer = await api.json("editMessageText", chat_id=alice["id"], message_id=4242, text="x")
    assert answer.status == 400
    assert answer.description == "Bad Request: message to edit not found"


async def test_editing_to_the_same_content_is_not_modified(api: BotApi, alice):
    """An edit with the same text and markup gets "message is not modified"."""
    markup = keyboard([("a", "a")])
    sent = await api.call("sendMessage", chat_id=alice["id"], text="same", reply_markup=markup)
    answer = await api.form(
        "editMessageText",
        chat_id=alice["id"],
        message_id=sent["message_id"],
        text="same",
        reply_markup=markup,
    )
    assert answer.status == 400
    assert answer.description.startswith("Bad Request: message is not modified")
    markup_only = await api.json(
        "editMessageReplyMarkup", chat_id=alice["id"], message_id=sent["message_id"], reply_markup=markup
    )
    assert markup_only.description.startswith("Bad Request: message is not modified")


async def test_editing_a_humans_message_is_refused(api: BotApi, alice, sb: SandboxClient):
    """A bot cannot edit a message a human wrote."""
    said = await sb.send_text(alice["id"], "hers", bot_id=BOT_ID)
    answer = await api.json(
        "editMessageText", chat_id=alice["id"], message_id=said["message"]["message_id"], text="x"
    )
    assert answer.description == "Bad Request: message can't be edited"


# ---------------------------------------------------------------------------------------------- chats


async def test_unknown_chat_is_not_found(api: BotApi):
    """A chat id nobody has gets "chat not found", also for @usernames and garbage."""
    for chat_id in (-1009999, 424242, "@nobody", "not-a-number"):
        answer = await api.json("sendMessage", chat_id=chat_id, text="x")
        assert answer.description == "Bad Request: chat not found", chat_id


async def test_bot_cannot_write_first_to_a_human(api: BotApi, sb: SandboxClient):
    """A human who never wrote to the bot cannot be messaged: 403 "bot can't initiate conversation"."""
    bob = await sb.create_user("Bob")
    answer = await api.json("sendMessage", chat_id=bob["id"], text="hi")
    assert answer.status == 403
    assert answer.description == "Forbidden: bot can't initiate conversation with a user"


async def test_bot_not_in_group_is_forbidden(api: BotApi, sb: SandboxClient, alice):
    """A group the bot is not a member of answers 403."""
    group = await sb.create_group("No bot", forum=False, admins=[alice["id"]])
    answer = await api.json("sendMessage", chat_id=group["id"], text="x")
    assert answer.status == 403
    assert answer.description == "Forbidden: bot is not a member of the supergroup chat"


async def test_chat_can_be_named_by_username(api: BotApi, sb: SandboxClient, alice):
    """A public group's @username works as chat_id."""
    group = await sb.create_group(
        "Public", forum=False, admins=[alice["id"]], bots=[{"bot_id": BOT_ID}], username="beacon_public"
    )
    message = await api.call("sendMessage", chat_id="@beacon_public", text="x")
    assert message["chat"]["id"] == group["id"]


# ---------------------------------------------------------------------------------------------- topics


async def test_topics_in_a_non_forum_group_are_refused(api: BotApi, sb: SandboxClient, alice):
    """createForumTopic in a supergroup that is not a forum gets "the chat is not a forum"."""
    group = await sb.create_group("Flat", forum=False, admins=[alice["id"]], bots=[{"bot_id": BOT_ID}])
    answer = await api.json("createForumTopic", chat_id=group["id"], name="T")
    assert answer.status == 400
    assert answer.description == "Bad Request: the chat is not a forum"


async def test_topics_without_can_manage_topics_are_refused(api: BotApi, sb: SandboxClient, alice):
    """An admin bot without can_manage_topics cannot create a topic."""
    group = await sb.create_group(
        "Forum",
        forum=True,
        admins=[alice["id"]],
        bots=[{"bot_id": BOT_ID, "admin": True, "can_manage_topics": False}],
    )
    answer = await api.json("createForumTopic", chat_id=group["id"], name="T")
    assert answer.status == 400
    assert "not enough rights" in answer.description


async def test_topic_name_must_be_1_to_128_characters(api: BotApi, forum):
    """A topic name of 128 characters is fine; 129 or empty is refused."""
    assert (await api.json("createForumTopic", chat_id=forum["id"], name="n" * 128)).ok
    assert (await api.json("createForumTopic", chat_id=forum["id"], name="n" * 129)).status == 400
    assert (await api.json("createForumTopic", chat_id=forum["id"], name="")).status == 400


async def test_sending_to_a_deleted_topic_is_thread_not_found(api: BotApi, forum):
    """After deleteForumTopic, sending into it gets "message thread not found"."""
    thread = (await api.call("createForumTopic", chat_id=forum["id"], name="T"))["message_thread_id"]
    await api.call("deleteForumTopic", chat_id=forum["id"], message_thread_id=thread)
    answer = await api.form("sendMessage", chat_id=forum["id"], message_thread_id=thread, text="x")
    assert answer.status == 400
    assert answer.description == "Bad Request: message thread not found"


# ---------------------------------------------------------------------------------------------- flood limits


async def test_limits_are_on_by_default():
    """A sandbox started without options enforces the flood limits."""
    async with SandboxServer() as plain, SandboxClient(plain.url) as sb:
        limits = await sb.set_limits()
    assert limits == {
        "enabled": True,
        "per_chat_per_second": 1.0,
        "per_chat_burst": 3.0,
        "per_group_per_minute": 20.0,
    }


async def test_per_chat_burst_then_429_then_fine_after_the_clock_moves(api: BotApi, alice, sb: SandboxClient):
    """Three quick messages pass, the fourth gets 429 retry_after 1; a second later it passes."""
    await sb.set_limits(enabled=True)
    for i in range(3):
        assert (await api.json("sendMessage", chat_id=alice["id"], text=str(i))).ok
    refused = await api.json("sendMessage", chat_id=alice["id"], text="3")
    assert refused.status == 429
    assert refused.body["parameters"] == {"retry_after": 1}
    assert refused.description == "Too Many Requests: retry after 1"
    await sb.advance_clock(1)
    assert (await api.json("sendMessage", chat_id=alice["id"], text="3")).ok


async def test_per_chat_limit_is_per_chat(api: BotApi, alice, sb: SandboxClient):
    """Exhausting one chat's bucket does not slow another chat."""
    await sb.set_limits(enabled=True)
    bob = await sb.create_user("Bob")
    await sb.send_text(bob["id"], "/start", bot_id=BOT_ID)
    for i in range(3):
        await api.call("sendMessage", chat_id=alice["id"], text=str(i))
    assert (await api.json("sendMessage", chat_id=alice["id"], text="x")).status == 429
    assert (await api.json("sendMessage", chat_id=bob["id"], text="x")).ok


async def test_per_group_limit_is_shared_by_all_topics(api: BotApi, forum, sb: SandboxClient):
    """20 messages a minute per group, counted across topics; the 21st gets 429 until the clock moves."""
    first = (await api.call("createForumTopic", chat_id=forum["id"], name="A"))["message_thread_id"]
    second = (await api.call("createForumTopic", chat_id=forum["id"], name="B"))["message_thread_id"]
    await sb.set_limits(enabled=True)
    for i in range(20):
        thread = first if i % 2 else second
        answer = await api.json("sendMessage", chat_id=forum["id"], message_thread_id=thread, text=str(i))
        assert answer.ok, (i, answer.body)
    refused = await api.json("sendMessage", chat_id=forum["id"], message_thread_id=first, text="21")
    assert refused.status == 429
    retry_after = refused.body["parameters"]["retry_after"]
    assert retry_after == 3
    await sb.advance_clock(retry_after)
    assert (await api.json("sendMessage", chat_id=forum["id"], message_thread_id=second, text="21")).ok


async def test_limits_can_be_disabled(api: BotApi, alice, sb: SandboxClient):
    """With limits disabled through /_sandbox/limits, a burst of 30 messages all pass."""
    await sb.set_limits(enabled=True)
    limits = await sb.set_limits(enabled=False)
    assert limits["enabled"] is False
    for i in range(30):
        assert (await api.json("sendMessage", chat_id=alice["id"], text=str(i))).ok


async def test_limits_can_be_tuned(api: BotApi, alice, sb: SandboxClient):
    """A custom burst size is enforced."""
    await sb.set_limits(enabled=True, per_chat_burst=5)
    results = [(await api.json("sendMessage", chat_id=alice["id"], text=str(i))).status for i in range(6)]
    assert results == [200] * 5 + [429]
