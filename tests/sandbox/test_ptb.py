"""python-telegram-bot against the sandbox: its parsers accept our objects and a real Application runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import telegram
from telegram import (
    CallbackQuery,
    ChatFullInfo,
    ChatMember,
    ChatMemberAdministrator,
    ChatMemberBanned,
    ChatMemberLeft,
    ChatMemberMember,
    ChatMemberOwner,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageOriginUser,
    Update,
    User,
    WebhookInfo,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from sandbox import SandboxClient, SandboxServer
from tests.sandbox.conftest import BOT_ID, TOKEN, BotApi, drain


async def test_ptb_parses_get_me(api: BotApi):
    """getMe's result is a telegram.User with the bot's flags."""
    user = User.de_json(await api.call("getMe"), bot=None)
    assert user.id == BOT_ID
    assert user.is_bot
    assert user.can_join_groups is True


async def test_ptb_parses_get_chat_for_group_and_private(api: BotApi, forum, alice):
    """getChat results parse as ChatFullInfo for a forum supergroup and a private chat."""
    sent = await api.call("sendMessage", chat_id=forum["id"], text="pinned")
    await api.call("pinChatMessage", chat_id=forum["id"], message_id=sent["message_id"])
    group = ChatFullInfo.de_json(await api.call("getChat", chat_id=forum["id"]), bot=None)
    assert group.type == "supergroup"
    assert group.is_forum is True
    assert group.pinned_message is not None
    assert group.pinned_message.text == "pinned"
    private = ChatFullInfo.de_json(await api.call("getChat", chat_id=alice["id"]), bot=None)
    assert private.type == "private"
    assert private.first_name == "Alice"


async def test_ptb_parses_every_chat_member_shape(api: BotApi, sb: SandboxClient, forum, alice):
    """getChatMember results parse into the right ChatMember subclass for each status."""
    bob = await sb.create_user("Bob")
    carol = await sb.create_user("Carol")
    await sb.set_member(forum["id"], bob["id"], "member")
    await sb.set_member(forum["id"], carol["id"], "kicked")
    dave = await sb.create_user("Dave")
    expected = {
        alice["id"]: ChatMemberOwner,
        BOT_ID: ChatMemberAdministrator,
        bob["id"]: ChatMemberMember,
        carol["id"]: ChatMemberBanned,
        dave["id"]: ChatMemberLeft,
    }
    for user_id, kind in expected.items():
        member = ChatMember.de_json(
            await api.call("getChatMember", chat_id=forum["id"], user_id=user_id), bot=None
        )
        assert isinstance(member, kind), (user_id, member)
        assert member.user.id == user_id
    admin = ChatMember.de_json(await api.call("getChatMember", chat_id=forum["id"], user_id=BOT_ID), bot=None)
    assert isinstance(admin, ChatMemberAdministrator)
    assert admin.can_manage_topics is True


async def test_ptb_parses_get_chat_administrators(api: BotApi, forum):
    """getChatAdministrators results parse as ChatMember objects."""
    admins = [
        ChatMember.de_json(a, bot=None) for a in await api.call("getChatAdministrators", chat_id=forum["id"])
    ]
    assert {type(a) for a in admins} == {ChatMemberOwner, ChatMemberAdministrator}


async def test_ptb_parses_get_webhook_info(api: BotApi):
    """getWebhookInfo results parse as WebhookInfo, with and without a webhook."""
    empty = WebhookInfo.de_json(await api.call("getWebhookInfo"), bot=None)
    assert empty.url == ""
    await api.call("setWebhook", url="http://127.0.0.1:9/hook", allowed_updates=["message"])
    info = WebhookInfo.de_json(await api.call("getWebhookInfo"), bot=None)
    assert info.url == "http://127.0.0.1:9/hook"
    assert info.allowed_updates == ("message",)


async def test_ptb_parses_updates_of_every_kind(api: BotApi, sb: SandboxClient, forum, alice):
    """Messages, media, service messages, callbacks and member changes all parse as telegram.Update."""
    await api.json(
        "getUpdates",
        allowed_updates=["message", "edited_message", "callback_query", "chat_member", "my_chat_member"],
    )
    bob = await sb.create_user("Bob")
    await sb.set_member(forum["id"], bob["id"], "member")
    said = await sb.send_text(alice["id"], "/help me", bot_id=BOT_ID)
    await sb.edit_message(alice["id"], said["message"]["message_id"], "/help", bot_id=BOT_ID)
    await sb.send_photo(alice["id"], bot_id=BOT_ID)
    await sb.send_voice(alice["id"], bot_id=BOT_ID)
    await sb.send_document(alice["id"], "a.txt", "text/plain", b"a", bot_id=BOT_ID)
    await sb.send_location(alice["id"], 1.5, 2.5, bot_id=BOT_ID)
    await sb.send_contact(alice["id"], "+1", "Mum", bot_id=BOT_ID)
    await sb.send_sticker(alice["id"], bot_id=BOT_ID)
    await sb.send(alice["id"], bot_id=BOT_ID, poll={"question": "?", "options": ["a", "b"]})
    await sb.create_topic(forum["id"], "Topic")
    sent = await api.call(
        "sendMessage",
        chat_id=alice["id"],
        text="b",
        reply_markup={"inline_keyboard": [[{"text": "b", "callback_data": "b"}]]},
    )
    await sb.press_button(alice["id"], sent["message_id"], data="b", bot_id=BOT_ID)
    updates = [Update.de_json(u, bot=None) for u in await drain(api)]
    kinds = {
        "chat_member": any(u.chat_member for u in updates),
        "edited": any(u.edited_message for u in updates),
        "photo": any(u.message and u.message.photo for u in updates),
        "voice": any(u.message and u.message.voice for u in updates),
        "document": any(u.message and u.message.document for u in updates),
        "location": any(u.message and u.message.location for u in updates),
        "contact": any(u.message and u.message.contact for u in updates),
        "sticker": any(u.message and u.message.sticker for u in updates),
        "poll": any(u.message and u.message.poll for u in updates),
        "topic": any(u.message and u.message.forum_topic_created for u in updates),
        "joined": any(u.message and u.message.new_chat_members for u in updates),
        "callback": any(isinstance(u.callback_query, CallbackQuery) for u in updates),
    }
    assert all(kinds.values()), kinds
    command = next(u.message for u in updates if u.message and u.message.text == "/help me")
    assert command.parse_entities()  # offsets line up with the text


async def test_ptb_parses_a_forwarded_message(api: BotApi, sb: SandboxClient, forum, alice):
    """forwardMessage's result parses with a MessageOriginUser naming the sender."""
    said = await sb.send_text(alice["id"], "fwd", bot_id=BOT_ID)
    raw = await api.call(
        "forwardMessage",
        chat_id=forum["id"],
        from_chat_id=alice["id"],
        message_id=said["message"]["message_id"],
    )
    message = Message.de_json(raw, bot=None)
    assert isinstance(message.forward_origin, MessageOriginUser)
    assert message.forward_origin.sender_user.id == alice["id"]


async def test_ptb_parses_a_message_with_a_text_mention(api: BotApi, alice):
    """An HTML tg://user mention becomes a text_mention with the full User; unknown users are dropped."""
    user_id = alice["id"]
    html = f'<a href="tg://user?id={user_id}">Alice</a> and <a href="tg://user?id=5">ghost</a>'
    raw = await api.call("sendMessage", chat_id=alice["id"], text=html, parse_mode="HTML")
    message = Message.de_json(raw, bot=None)
    assert message.text == "Alice and ghost"
    assert len(message.entities) == 1
    assert message.entities[0].type == "text_mention"
    assert message.entities[0].user is not None
    assert message.entities[0].user.first_name == "Alice"


# ---------------------------------------------------------------------------------------------- end to end


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go:1")]])
    await update.effective_message.reply_text("Hello from the bot", reply_markup=keyboard)


async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer("Going")
    await query.edit_message_text(f"You chose {query.data}")


async def photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None
    data = await (await context.bot.get_file(message.photo[-1].file_id)).download_as_bytearray()
    context.bot_data["photo"] = bytes(data)
    await message.reply_text(f"Got {len(data)} bytes")


@pytest.fixture
async def application(server: SandboxServer) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    """A python-telegram-bot Application polling the sandbox."""
    app = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(f"{server.url}/bot")
        .base_file_url(f"{server.url}/file/bot")
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(pressed))
    app.add_handler(MessageHandler(filters.PHOTO, photo))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=5)
    yield app
    await app.updater.stop()
    await app.stop()
    await app.shutdown()


async def test_ptb_application_answers_start_button_and_photo(
    application: Application[Any, Any, Any, Any, Any, Any], sb: SandboxClient
):
    """A real PTB Application answers /start, answers a button press and downloads a human's photo."""
    bob = await sb.create_user("Bob", language_code="en")
    said = await sb.send_text(bob["id"], "/start", bot_id=BOT_ID)
    reply = await sb.wait_for_message(
        bob["id"], bot_id=BOT_ID, predicate=lambda m: m.get("text") == "Hello from the bot", timeout=10
    )
    assert reply["message_id"] > said["message"]["message_id"]

    pressed_query = await sb.press_button(bob["id"], reply["message_id"], button_text="Go", bot_id=BOT_ID)
    edited = await sb.wait_for_message(
        bob["id"], bot_id=BOT_ID, predicate=lambda m: m.get("text") == "You chose go:1", timeout=10
    )
    assert edited["message_id"] == reply["message_id"]
    answer = await sb.callback_answer(pressed_query["callback_query_id"])
    assert answer["answered"] is True
    assert answer["text"] == "Going"

    sent = await sb.send_photo(bob["id"], bot_id=BOT_ID)
    await sb.wait_for_message(
        bob["id"], bot_id=BOT_ID, predicate=lambda m: m.get("text", "").startswith("Got ")
    )
    file_id = sent["message"]["photo"][-1]["file_id"]
    assert application.bot_data["photo"] == await sb.file_bytes(file_id)
    assert application.bot_data["photo"].startswith(b"\x89PNG\r\n\x1a\n")
    assert isinstance(application.bot, telegram.Bot)
    await asyncio.sleep(0)
