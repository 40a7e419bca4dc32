"""What the simulated humans do: write, press buttons, edit, join and leave groups, block a bot.

Each action changes the world as Telegram would and queues the updates each bot would receive.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

from sandbox import botapi
from sandbox.markup import command_entities, utf16_len
from sandbox.samples import sample_png, sample_voice
from sandbox.world import (
    FORUM_ICON_COLORS,
    JSON,
    BotAccount,
    CallbackQuery,
    ControlError,
    Conversation,
    Group,
    Member,
    World,
)

MAX_HUMAN_TEXT = 4096


def _decode(body: JSON) -> bytes | None:
    content = body.get("content_base64")
    if not content:
        return None
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise ControlError("content_base64 is not valid base64") from None


def _content(world: World, body: JSON) -> JSON:
    """Build the content fields of a human's message from the control request."""
    if "text" in body:
        text = str(body["text"])
        if not text.strip():
            raise ControlError("a message needs some text")
        if utf16_len(text) > MAX_HUMAN_TEXT:
            # A Telegram client splits a long text into several messages; the caller should too.
            raise ControlError(f"a Telegram client sends at most {MAX_HUMAN_TEXT} characters per message")
        content: JSON = {"text": text}
        entities = command_entities(text)
        if entities:
            content["entities"] = entities
        return content
    if "location" in body:
        location = body["location"]
        try:
            latitude, longitude = float(location["latitude"]), float(location["longitude"])
        except (KeyError, TypeError, ValueError):
            raise ControlError("location needs latitude and longitude") from None
        return {"location": {"latitude": latitude, "longitude": longitude}}
    if "photo" in body:
        photo = body["photo"] or {}
        stored = world.add_file(_decode(photo) or sample_png(), "image/jpeg", "photos", "jpg")
        content = {"photo": botapi.photo_sizes(stored)}
        if photo.get("caption"):
            content["caption"] = str(photo["caption"])[:1024]
        return content
    if "voice" in body:
        voice = body["voice"] or {}
        data = _decode(voice)
        stored = world.add_file(data or sample_voice(), voice.get("mime_type", "audio/wav"), "voice", "wav")
        return {
            "voice": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "duration": int(voice.get("duration", 1)),
                "mime_type": stored.mime_type,
                "file_size": len(stored.data),
            }
        }
    if "document" in body:
        document = body["document"] or {}
        name = str(document.get("file_name", "document.pdf"))
        mime = str(document.get("mime_type", "application/pdf"))
        stored = world.add_file(
            _decode(document) or b"%PDF-1.4\n% sandbox sample\n", mime, "documents", "bin"
        )
        return {
            "document": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_name": name,
                "mime_type": mime,
                "file_size": len(stored.data),
            }
        }
    if "contact" in body:
        contact = body["contact"] or {}
        if not contact.get("phone_number") or not contact.get("first_name"):
            raise ControlError("contact needs phone_number and first_name")
        return {
            "contact": {
                k: contact[k] for k in ("phone_number", "first_name", "last_name", "user_id") if k in contact
            }
        }
    if "sticker" in body:
        sticker = body["sticker"] or {}
        stored = world.add_file(sample_png(64, 64), "image/webp", "stickers", "webp")
        return {
            "sticker": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "type": "regular",
                "emoji": str(sticker.get("emoji", "🙂")),
            }
        }
    if "poll" in body:
        poll = body["poll"] or {}
        options = [
            {"text": str(o), "voter_count": 0, "persistent_id": str(i)}
            for i, o in enumerate(poll.get("options", ["Yes", "No"]))
        ]
        return {
            "poll": {
                "id": str(secrets.randbits(62)),
                "question": str(poll.get("question", "?")),
                "options": options,
                "total_voter_count": 0,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
                "allows_revoting": False,
                "members_only": False,
            }
        }
    raise ControlError(
        "a message needs one of text, location, photo, voice, document, contact, sticker, poll"
    )


def _private_target(world: World, body: JSON, user_id: int) -> tuple[BotAccount, Conversation]:
    bot_id = body.get("bot_id")
    if bot_id is None:
        if len(world.bots) != 1:
            raise ControlError("bot_id is required when several bots are registered")
        bot_id = next(iter(world.bots))
    bot = world.bots.get(int(bot_id))
    if bot is None:
        raise ControlError(f"no bot {bot_id}", 404)
    return bot, world.private_conversation(bot.id, user_id)


def send_message(world: World, body: JSON) -> JSON:
    """A human sends a message in a private chat with a bot or in a group."""
    user_id = int(body.get("from_user_id", 0))
    human = world.human(user_id)
    chat_id = int(body.get("chat_id") or user_id)
    group: Group | None = None
    if chat_id == user_id:
        bot, conversation = _private_target(world, body, user_id)
        human.blocked_bots.discard(bot.id)  # writing to a bot restarts it, as the app's "Restart" does
        conversation.started = True
        chat = world.private_chat_json(user_id)
        recipients = [bot]
    else:
        group = world.group(chat_id)
        if group.migrated_to is not None:
            raise ControlError(f"this group became {group.migrated_to}")
        if not group.is_member(user_id):
            raise ControlError("the user is not a member of this group")
        conversation = group.conversation
        chat = group.chat_json()
        recipients = world.bots_in(group)
    content = _content(world, body)
    thread_id = int(body.get("message_thread_id") or 0)
    try:
        fields = world.topic_fields(group, thread_id)
    except Exception:
        raise ControlError("no such topic", 404) from None
    if group is not None and thread_id and group.topics[thread_id].is_closed:
        member = group.members[user_id]
        if member.status not in ("creator", "administrator"):
            raise ControlError("the topic is closed")
    message: JSON = {
        "message_id": conversation.new_id(),
        "from": human.user_json(),
        "chat": chat,
        "date": int(world.clock.now()),
        **fields,
    }
    reply_to = body.get("reply_to_message_id")
    if reply_to:
        replied = conversation.get(int(reply_to))
        if replied is None:
            raise ControlError("the message to reply to does not exist")
        message["reply_to_message"] = {k: v for k, v in replied.data.items() if k != "reply_to_message"}
    message.update(content)
    world.store(conversation, message, user_id)
    if conversation.keyboard and conversation.keyboard.get("one_time_keyboard") and "text" in content:
        conversation.keyboard = None
    update_ids = [world.emit(bot, "message", message) for bot in recipients]
    return {"message": message, "update_ids": [u for u in update_ids if u is not None]}


def _conversation_for(
    world: World, body: JSON, user_id: int
) -> tuple[Conversation, list[BotAccount], Group | None]:
    chat_id = int(body.get("chat_id") or user_id)
    if chat_id == user_id:
        bot, conversation = _private_target(world, body, user_id)
        return conversation, [bot], None
    group = world.group(chat_id)
    if not group.is_member(user_id):
        raise ControlError("the user is not a member of this group")
    return group.conversation, world.bots_in(group), group


def edit_message(world: World, body: JSON) -> JSON:
    """A human edits the text of a message they sent."""
    user_id = int(body.get("from_user_id", 0))
    world.human(user_id)
    conversation, recipients, _ = _conversation_for(world, body, user_id)
    stored = conversation.get(int(body.get("message_id", 0)))
    if stored is None or stored.sender_id != user_id:
        raise ControlError("the user has no such message to edit", 404)
    if "text" not in stored.data:
        raise ControlError("only text messages can be edited here")
    content = _content(world, {"text": body.get("text", "")})
    stored.data.update(content)
    if "entities" not in content:
        stored.data.pop("entities", None)
    stored.data["edit_date"] = int(world.clock.now())
    world.touch()
    update_ids = [world.emit(bot, "edited_message", dict(stored.data)) for bot in recipients]
    return {"message": stored.data, "update_ids": [u for u in update_ids if u is not None]}


def _button_data(markup: JSON | None) -> list[tuple[str, str]]:
    if not markup:
        return []
    return [
        (str(b.get("text")), str(b["callback_data"]))
        for row in markup.get("inline_keyboard", [])
        for b in row
        if "callback_data" in b
    ]


def press_button(world: World, body: JSON) -> JSON:
    """A human presses an inline button under a bot's message; `forge` sends data no button carries."""
    user_id = int(body.get("from_user_id", 0))
    human = world.human(user_id)
    conversation, recipients, group = _conversation_for(world, body, user_id)
    stored = conversation.get(int(body.get("message_id", 0)))
    if stored is None:
        raise ControlError("no such message", 404)
    bot = world.bots.get(stored.sender_id)
    if bot is None or bot not in recipients:
        raise ControlError("only a bot's message carries inline buttons")
    buttons = _button_data(stored.data.get("reply_markup"))
    data = body.get("data")
    if data is None and body.get("button_text") is not None:
        matches = [d for text, d in buttons if text == body["button_text"]]
        if not matches:
            raise ControlError("no button with that text")
        data = matches[0]
    if data is None:
        raise ControlError("give data or button_text")
    data = str(data)
    if not body.get("forge") and data not in [d for _, d in buttons]:
        raise ControlError("no button of that message carries this data (use forge to send it anyway)")
    query = CallbackQuery(id=botapi.new_callback_id(), bot_id=bot.id, created=world.clock.now())
    world.callbacks[query.id] = query
    chat_key = group.id if group else user_id
    payload: JSON = {
        "id": query.id,
        "from": human.user_json(),
        "message": stored.data,
        "chat_instance": str(abs(hash((bot.id, chat_key))) % 10**18),
        "data": data,
    }
    update_id = world.emit(bot, "callback_query", payload)
    return {"callback_query_id": query.id, "update_ids": [update_id] if update_id is not None else []}


def create_group(world: World, body: JSON) -> Group:
    """Create a group or (forum) supergroup with human members and admins and bots."""
    supergroup = bool(body.get("supergroup", True))
    forum = bool(body.get("forum", False))
    group = world.new_group(str(body.get("title", "")), supergroup=supergroup, forum=forum)
    if body.get("username"):
        group.username = str(body["username"])
    admins = [int(a) for a in body.get("admins", [])]
    members = [int(m) for m in body.get("members", [])]
    for index, uid in enumerate(admins):
        world.human(uid)
        status = "creator" if index == 0 else "administrator"
        group.members[uid] = Member(status, True, True, True)
    for uid in members:
        world.human(uid)
        group.members.setdefault(uid, Member("member"))
    if not admins and members:
        group.members[members[0]] = Member("creator", True, True, True)
    for entry in body.get("bots", []):
        bot = world.bots.get(int(entry["bot_id"]))
        if bot is None:
            raise ControlError(f"no bot {entry['bot_id']}", 404)
        admin = bool(entry.get("admin", True))
        can_topics = bool(entry.get("can_manage_topics", admin))
        status = "administrator" if admin else "member"
        set_member(world, group, bot.id, status, rights=(can_topics, admin, admin))
    world.touch()
    return group


def _actor(world: World, group: Group) -> JSON:
    for uid, member in group.members.items():
        if member.status == "creator":
            return world.user_json(uid)
    return world.user_json(next(iter(group.members)))


def set_member(
    world: World,
    group: Group,
    user_id: int,
    status: str,
    rights: tuple[bool, bool, bool] = (True, True, True),
) -> None:
    """Change someone's membership, posting the service message and the (my_)chat_member updates."""
    if status not in ("member", "administrator", "left", "kicked", "restricted"):
        raise ControlError("status must be member, administrator, restricted, left or kicked")
    user = world.user_json(user_id)
    old = (
        botapi.member_json(world, group, user_id)
        if user_id in group.members
        else {"status": "left", "user": user}
    )
    was_member = group.is_member(user_id)
    if status == "administrator":
        group.members[user_id] = Member("administrator", *rights)
    else:
        group.members[user_id] = Member(status)
    new = botapi.member_json(world, group, user_id)
    actor = _actor(world, group) if group.members else user
    now = int(world.clock.now())
    changed: JSON = {
        "chat": group.chat_json(),
        "from": actor,
        "date": now,
        "old_chat_member": old,
        "new_chat_member": new,
    }
    if user_id in world.bots:
        world.emit(world.bots[user_id], "my_chat_member", changed)
    for bot in world.bots_in(group):
        if bot.id != user_id:
            member = group.members[bot.id]
            if member.status in ("creator", "administrator"):
                world.emit(bot, "chat_member", changed)
    service: JSON | None = None
    if group.is_member(user_id) and not was_member:
        service = {"new_chat_members": [user]}
    elif was_member and not group.is_member(user_id):
        service = {"left_chat_member": user}
    if service is not None:
        message = {
            "message_id": group.conversation.new_id(),
            "from": actor if status != "left" else user,
            "chat": group.chat_json(),
            "date": now,
            **service,
        }
        world.store(group.conversation, message, int(message["from"]["id"]))
        for bot in world.bots_in(group):
            world.emit(bot, "message", message)
    world.touch()


def migrate_group(world: World, group: Group) -> int:
    """Upgrade a basic group to a supergroup with a new id; the old id then answers migrate_to_chat_id."""
    if group.type != "group" or group.migrated_to is not None:
        raise ControlError("only a basic group that has not migrated can be upgraded")
    new = world.new_group(group.title, supergroup=True, forum=False)
    new.members = dict(group.members)
    group.migrated_to = new.id
    now = int(world.clock.now())
    actor = _actor(world, group)
    old_message = {
        "message_id": group.conversation.new_id(),
        "from": actor,
        "chat": group.chat_json(),
        "date": now,
        "migrate_to_chat_id": new.id,
    }
    new_message = {
        "message_id": new.conversation.new_id(),
        "from": actor,
        "chat": new.chat_json(),
        "date": now,
        "migrate_from_chat_id": group.id,
    }
    world.store(group.conversation, old_message, int(actor["id"]))
    world.store(new.conversation, new_message, int(actor["id"]))
    for bot in world.bots_in(new):
        world.emit(bot, "message", old_message)
        world.emit(bot, "message", new_message)
    return new.id


def human_topic(world: World, group: Group, body: JSON) -> JSON:
    """A human admin opens a forum topic."""
    if not group.is_forum:
        raise ControlError("the group is not a forum")
    user_id = int(body.get("from_user_id") or next(iter(group.members)))
    topic = botapi.create_topic(
        world,
        group,
        world.user_json(user_id),
        str(body.get("name", "")),
        int(body.get("icon_color", FORUM_ICON_COLORS[1])),
    )
    return topic.as_json()


def transcript(world: World, chat_id: int, bot_id: int | None, thread_id: int | None) -> JSON:
    """What a human sees in a chat now: messages not deleted, the reply keyboard, pinned ids."""
    if chat_id > 0:
        if bot_id is None:
            if len(world.bots) != 1:
                raise ControlError("bot_id is required when several bots are registered")
            bot_id = next(iter(world.bots))
        world.human(chat_id)
        conversation = world.private.get((bot_id, chat_id)) or Conversation()
    else:
        conversation = world.group(chat_id).conversation
    messages: list[Any] = []
    for message_id in sorted(conversation.messages):
        stored = conversation.messages[message_id]
        if stored.deleted:
            continue
        in_thread = stored.data.get("message_thread_id") if stored.data.get("is_topic_message") else None
        if thread_id is not None and (in_thread or 0) != thread_id:
            continue
        messages.append(stored.data)
    return {"messages": messages, "keyboard": conversation.keyboard, "pinned": list(conversation.pinned)}


def world_state(world: World) -> JSON:
    """A snapshot for the UI: bots, humans, groups with members and topics, private chats."""
    chats: list[JSON] = []
    for group in world.groups.values():
        chats.append(
            {
                **group.chat_json(),
                "members": {str(uid): m.status for uid, m in group.members.items()},
                "topics": [
                    t.as_json() for t in sorted(group.topics.values(), key=lambda t: t.message_thread_id)
                ],
                "migrated_to": group.migrated_to,
            }
        )
    for (bot_id, user_id), conversation in world.private.items():
        if conversation.started:
            chats.append({"id": user_id, "type": "private", "user_id": user_id, "bot_id": bot_id})
    return {
        "version": world.version,
        "now": world.clock.now(),
        "bots": [bot.user_json() for bot in world.bots.values()],
        "users": [human.user_json() for human in world.humans.values()],
        "chats": chats,
    }
