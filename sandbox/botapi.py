"""The Bot API methods: each takes the world, the calling bot and the request's parameters.

Method names are matched case-insensitively, as Telegram does. Every rule a real bot can trip over (limits,
rights, missing messages, the 48-hour deletion window) raises `ApiError` with Telegram's own text.
"""

from __future__ import annotations

import asyncio
import builtins
import ipaddress
import json
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sandbox.errors import ApiError, bad_request
from sandbox.markup import parse_text, utf16_len
from sandbox.samples import image_size
from sandbox.world import (
    CALLBACK_TTL_SECONDS,
    DEFAULT_ALLOWED_UPDATES,
    DELETE_WINDOW_SECONDS,
    FORUM_ICON_COLORS,
    JSON,
    BotAccount,
    Conversation,
    Group,
    StoredFile,
    Topic,
    Webhook,
    World,
)

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_INLINE_BUTTONS = 100
MAX_INLINE_ROW = 8
SEND_METHODS = frozenset(
    {"sendmessage", "sendphoto", "senddocument", "sendvoice", "sendlocation", "copymessage", "forwardmessage"}
)


@dataclass
class Upload:
    """A file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes


class Params:
    """A request's parameters, which may arrive as strings (form), JSON values or uploads."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def has(self, name: str) -> bool:
        return name in self.raw and self.raw[name] not in (None, "")

    def get(self, name: str) -> Any:
        return self.raw.get(name)

    def require(self, name: str) -> Any:
        if not self.has(name):
            raise bad_request(
                f"{name} is empty" if name in ("text", "message_text") else f"{name} is required"
            )
        return self.raw[name]

    def str(self, name: str, default: str | None = None) -> str | None:
        value = self.raw.get(name)
        if value is None:
            return default
        return value if isinstance(value, str) else json.dumps(value)

    def int(self, name: builtins.str, default: int | None = None) -> int | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            raise bad_request(f"invalid {name} specified")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def float(self, name: builtins.str) -> float:
        value = self.require(name)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def bool(self, name: builtins.str) -> bool:
        value = self.raw.get(name)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1")
        return bool(value)

    def json(self, name: builtins.str) -> Any:
        value = self.raw.get(name)
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {name} JSON object") from None
        return value


Handler = Callable[[World, BotAccount, Params], Awaitable[Any]]
METHODS: dict[str, Handler] = {}


def method(name: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        METHODS[name.lower()] = func
        return func

    return register


# ---------------------------------------------------------------------------------------------- helpers


def _chat_id(p: Params) -> Any:
    value = p.get("chat_id")
    if value is None or value == "":
        raise bad_request("chat_id is empty")
    return value


def _validate_reply_markup(markup: Any) -> JSON | None:
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
        if sum(len(row) for row in rows) > MAX_INLINE_BUTTONS or any(len(r) > MAX_INLINE_ROW for r in rows):
            raise bad_request("BUTTONS_TOO_MUCH")
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise bad_request("text buttons are unallowed in the inline keyboard")
                if "callback_data" in button:
                    data = button["callback_data"]
                    if (
                        not isinstance(data, str)
                        or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES
                    ):
                        raise bad_request("BUTTON_DATA_INVALID")
                elif "url" in button:
                    if not str(button["url"]).startswith(("http://", "https://", "tg://")):
                        raise bad_request("BUTTON_URL_INVALID")
                elif not any(k in button for k in ("switch_inline_query", "copy_text", "web_app", "pay")):
                    raise bad_request("text buttons are unallowed in the inline keyboard")
        return markup
    if "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not rows:
            raise bad_request("keyboard must be non-empty")
        for row in rows:
            for button in row:
                text = (
                    button
                    if isinstance(button, str)
                    else button.get("text")
                    if isinstance(button, dict)
                    else None
                )
                if not text:
                    raise bad_request("keyboard button text must be non-empty")
        return markup
    if markup.get("remove_keyboard") or markup.get("force_reply"):
        return markup
    raise bad_request('can\'t find field "inline_keyboard"')


def _complete_mentions(world: World, entities: list[JSON]) -> list[JSON]:
    """Give text_mention entities the full User, as Telegram does; mentions of unknown users are dropped."""
    complete: list[JSON] = []
    for entity in entities:
        if isinstance(entity, dict) and entity.get("type") == "text_mention":
            user = entity.get("user")
            user_id = user.get("id") if isinstance(user, dict) else None
            if not isinstance(user_id, int) or (user_id not in world.humans and user_id not in world.bots):
                continue
            entity = {**entity, "user": world.user_json(user_id)}
        complete.append(entity)
    return complete


def _text_and_entities(
    world: World, p: Params, field: str, limit: int, *, required: bool
) -> tuple[str, list[JSON]]:
    raw = p.get(field)
    if raw is None or raw == "":
        if required:
            raise bad_request("message text is empty")
        return "", []
    raw = str(raw)
    explicit = p.json("entities" if field == "text" else "caption_entities")
    if explicit:
        text, entities = raw, list(explicit)
    else:
        text, entities = parse_text(raw, p.str("parse_mode"))
    if not text.strip():
        if required:
            raise bad_request("message text is empty")
        return "", []
    if len(text) > limit:
        raise bad_request("message is too long" if field == "text" else "message caption is too long")
    return text, _complete_mentions(world, entities)


def _base_message(
    world: World,
    bot: BotAccount,
    p: Params,
    chat: JSON,
    conversation: Conversation,
    group: Group | None,
) -> JSON:
    """The common part of a message a bot sends: id, sender, chat, date, thread and reply."""
    thread_id = p.int("message_thread_id")
    fields = world.topic_fields(group, thread_id)
    if group is not None and group.is_forum and thread_id:
        topic = group.topics[thread_id]
        member = group.members.get(bot.id)
        if topic.is_closed and (member is None or member.status not in ("creator", "administrator")):
            raise bad_request("TOPIC_CLOSED")
    reply_to = p.int("reply_to_message_id")
    reply_parameters = p.json("reply_parameters")
    allow_without = p.bool("allow_sending_without_reply")
    if isinstance(reply_parameters, dict):
        reply_to = int(reply_parameters.get("message_id", 0)) or None
        allow_without = allow_without or bool(reply_parameters.get("allow_sending_without_reply"))
    replied = conversation.get(reply_to) if reply_to else None
    if reply_to and replied is None and not allow_without:
        raise bad_request("message to be replied not found")
    message: JSON = {
        "message_id": conversation.new_id(),
        "from": bot.user_json(),
        "chat": chat,
        "date": int(world.clock.now()),
    }
    message.update(fields)
    if replied is not None:
        message["reply_to_message"] = {k: v for k, v in replied.data.items() if k != "reply_to_message"}
    if p.bool("protect_content"):
        message["has_protected_content"] = True
    return message


def _finish_send(
    world: World, bot: BotAccount, p: Params, conversation: Conversation, group: Group | None, message: JSON
) -> JSON:
    markup = _validate_reply_markup(p.json("reply_markup"))
    if markup is not None:
        if "inline_keyboard" in markup:
            message["reply_markup"] = markup
        elif "keyboard" in markup:
            conversation.keyboard = markup
        elif markup.get("remove_keyboard"):
            conversation.keyboard = None
    return world.store(conversation, message, bot.id)


def _prepare_send(world: World, bot: BotAccount, p: Params) -> tuple[JSON, Conversation, Group | None]:
    chat, conversation, group = world.resolve_for_bot(bot, _chat_id(p))
    world.check_rate(bot, int(chat["id"]), group is not None)
    return chat, conversation, group


def _file_from_param(world: World, p: Params, name: str, folder: str, default_mime: str) -> StoredFile:
    value = p.get(name)
    if isinstance(value, Upload):
        extension = value.filename.rsplit(".", 1)[-1] if "." in value.filename else "bin"
        mime = value.content_type or default_mime
        if mime == "application/octet-stream":
            mime = default_mime
        return world.add_file(value.data, mime, folder, extension)
    if isinstance(value, str) and value:
        if value.startswith(("http://", "https://")):
            raise bad_request("failed to get HTTP URL content")
        if value.startswith("attach://"):
            raise bad_request(f"{name} attachment not found")
        stored = world.files.get(value)
        if stored is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        return stored
    raise bad_request(f"there is no {name} in the request")


def _find_message(conversation: Conversation, message_id: int | None, missing: str) -> Any:
    stored = conversation.get(message_id) if message_id is not None else None
    if stored is None:
        raise bad_request(missing)
    return stored


# ---------------------------------------------------------------------------------------------- identity


@method("getMe")
async def get_me(world: World, bot: BotAccount, p: Params) -> JSON:
    return {
        **bot.user_json(),
        "can_join_groups": True,
        "can_read_all_group_messages": True,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


@method("logOut")
async def log_out(world: World, bot: BotAccount, p: Params) -> bool:
    return True


@method("close")
async def close(world: World, bot: BotAccount, p: Params) -> bool:
    return True


# ---------------------------------------------------------------------------------------------- updates


def _set_allowed(bot: BotAccount, p: Params) -> None:
    allowed = p.json("allowed_updates")
    if allowed is None:
        return
    if not isinstance(allowed, list):
        raise bad_request("can't parse allowed_updates JSON array")
    bot.allowed_updates = frozenset(str(a) for a in allowed) if allowed else DEFAULT_ALLOWED_UPDATES


@method("getUpdates")
async def get_updates(world: World, bot: BotAccount, p: Params) -> list[JSON]:
    if bot.webhook is not None:
        raise ApiError(
            409,
            "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
            "the webhook first",
        )
    offset = p.int("offset")
    limit = max(1, min(100, p.int("limit", 100) or 100))
    timeout = max(0, min(50, p.int("timeout", 0) or 0))
    _set_allowed(bot, p)
    bot.poller += 1
    generation = bot.poller
    bot.new_update.set()  # wake an older waiting call: it answers 409 Conflict now, not at its timeout
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        batch = world.pending_updates(bot, offset, limit)
        # Once confirmed, updates below offset are gone; later rounds need no offset.
        offset = None
        if batch or loop.time() >= deadline or world.stopping.is_set():
            return batch
        bot.new_update.clear()
        try:
            await asyncio.wait_for(bot.new_update.wait(), max(0.0, deadline - loop.time()))
        except TimeoutError:
            return world.pending_updates(bot, None, limit)
        if bot.poller != generation:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
                "is running",
            )


_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def _is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@method("setWebhook")
async def set_webhook(world: World, bot: BotAccount, p: Params) -> bool:
    url = p.str("url") or ""
    if not url:
        bot.webhook = None
        return True
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    if not _is_loopback(parts.hostname):
        raise bad_request("bad webhook: the sandbox delivers webhooks to loopback addresses only")
    secret = p.str("secret_token")
    if secret is not None and not _SECRET_TOKEN.match(secret):
        raise bad_request("secret token contains unallowed characters")
    _set_allowed(bot, p)
    if p.bool("drop_pending_updates"):
        bot.updates.clear()
    bot.webhook = Webhook(url=url, secret_token=secret, max_connections=p.int("max_connections", 40) or 40)
    bot.new_update.set()
    world.touch()
    return True


@method("deleteWebhook")
async def delete_webhook(world: World, bot: BotAccount, p: Params) -> bool:
    bot.webhook = None
    if p.bool("drop_pending_updates"):
        bot.updates.clear()
    world.touch()
    return True


@method("getWebhookInfo")
async def get_webhook_info(world: World, bot: BotAccount, p: Params) -> JSON:
    info: JSON = {"url": "", "has_custom_certificate": False, "pending_update_count": len(bot.updates)}
    if bot.webhook is not None:
        info["url"] = bot.webhook.url
        info["max_connections"] = bot.webhook.max_connections
        if bot.allowed_updates != DEFAULT_ALLOWED_UPDATES:
            info["allowed_updates"] = sorted(bot.allowed_updates)
        if bot.webhook.last_error_date is not None:
            info["last_error_date"] = bot.webhook.last_error_date
            info["last_error_message"] = bot.webhook.last_error_message
    return info


# ---------------------------------------------------------------------------------------------- sending


@method("sendMessage")
async def send_message(world: World, bot: BotAccount, p: Params) -> JSON:
    text, entities = _text_and_entities(world, p, "text", MAX_TEXT, required=True)
    chat, conversation, group = _prepare_send(world, bot, p)
    message = _base_message(world, bot, p, chat, conversation, group)
    message["text"] = text
    if entities:
        message["entities"] = entities
    return _finish_send(world, bot, p, conversation, group, message)


def _media_message(
    world: World, bot: BotAccount, p: Params, field: str, folder: str, default_mime: str
) -> tuple[JSON, Conversation, Group | None, StoredFile]:
    caption, caption_entities = _text_and_entities(world, p, "caption", MAX_CAPTION, required=False)
    world.resolve_for_bot(bot, _chat_id(p))
    stored = _file_from_param(world, p, field, folder, default_mime)
    chat, conversation, group = _prepare_send(world, bot, p)
    message = _base_message(world, bot, p, chat, conversation, group)
    if caption:
        message["caption"] = caption
        if caption_entities:
            message["caption_entities"] = caption_entities
    return message, conversation, group, stored


def photo_sizes(stored: StoredFile) -> list[JSON]:
    """The PhotoSize list Telegram makes of an image (the sandbox keeps the original size only)."""
    width, height = image_size(stored.data)
    return [
        {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": width,
            "height": height,
            "file_size": len(stored.data),
        }
    ]


@method("sendPhoto")
async def send_photo(world: World, bot: BotAccount, p: Params) -> JSON:
    message, conversation, group, stored = _media_message(world, bot, p, "photo", "photos", "image/jpeg")
    message["photo"] = photo_sizes(stored)
    return _finish_send(world, bot, p, conversation, group, message)


@method("sendDocument")
async def send_document(world: World, bot: BotAccount, p: Params) -> JSON:
    message, conversation, group, stored = _media_message(
        world, bot, p, "document", "documents", "application/octet-stream"
    )
    upload = p.get("document")
    name = upload.filename if isinstance(upload, Upload) else stored.file_path.rsplit("/", 1)[-1]
    message["document"] = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_name": name,
        "mime_type": stored.mime_type,
        "file_size": len(stored.data),
    }
    return _finish_send(world, bot, p, conversation, group, message)


@method("sendVoice")
async def send_voice(world: World, bot: BotAccount, p: Params) -> JSON:
    message, conversation, group, stored = _media_message(world, bot, p, "voice", "voice", "audio/ogg")
    message["voice"] = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "duration": p.int("duration", 1) or 1,
        "mime_type": stored.mime_type,
        "file_size": len(stored.data),
    }
    return _finish_send(world, bot, p, conversation, group, message)


@method("sendLocation")
async def send_location(world: World, bot: BotAccount, p: Params) -> JSON:
    latitude, longitude = p.float("latitude"), p.float("longitude")
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise bad_request("wrong coordinates specified")
    chat, conversation, group = _prepare_send(world, bot, p)
    message = _base_message(world, bot, p, chat, conversation, group)
    message["location"] = {"latitude": latitude, "longitude": longitude}
    return _finish_send(world, bot, p, conversation, group, message)


_CONTENT_FIELDS = (
    "text",
    "entities",
    "photo",
    "document",
    "voice",
    "location",
    "contact",
    "sticker",
    "poll",
    "caption",
    "caption_entities",
)


def _source_message(world: World, bot: BotAccount, p: Params) -> JSON:
    _, source_conversation, _ = world.resolve_for_bot(bot, p.require("from_chat_id"))
    stored = source_conversation.get(p.int("message_id", 0) or 0)
    if stored is None:
        raise bad_request("message to copy not found")
    return stored.data


@method("copyMessage")
async def copy_message(world: World, bot: BotAccount, p: Params) -> JSON:
    source = _source_message(world, bot, p)
    content = {k: v for k, v in source.items() if k in _CONTENT_FIELDS}
    if not any(
        k in content for k in ("text", "photo", "document", "voice", "location", "contact", "sticker")
    ):
        raise bad_request("message can't be copied")
    if p.has("caption") and "text" not in content:
        caption, caption_entities = _text_and_entities(world, p, "caption", MAX_CAPTION, required=False)
        content.pop("caption_entities", None)
        content["caption"] = caption
        if caption_entities:
            content["caption_entities"] = caption_entities
    chat, conversation, group = _prepare_send(world, bot, p)
    message = _base_message(world, bot, p, chat, conversation, group)
    message.update(content)
    _finish_send(world, bot, p, conversation, group, message)
    return {"message_id": message["message_id"]}


@method("forwardMessage")
async def forward_message_method(world: World, bot: BotAccount, p: Params) -> JSON:
    source = _source_message(world, bot, p)
    content = {k: v for k, v in source.items() if k in _CONTENT_FIELDS}
    chat, conversation, group = _prepare_send(world, bot, p)
    message = _base_message(world, bot, p, chat, conversation, group)
    message.update(content)
    sender = source.get("from")
    if sender is not None:
        message["forward_origin"] = {"type": "user", "sender_user": sender, "date": source["date"]}
    message["forward_date"] = source["date"]
    return _finish_send(world, bot, p, conversation, group, message)


@method("sendChatAction")
async def send_chat_action(world: World, bot: BotAccount, p: Params) -> bool:
    world.resolve_for_bot(bot, _chat_id(p))
    return True


# ---------------------------------------------------------------------------------------------- editing


def _editable(world: World, bot: BotAccount, p: Params) -> Any:
    if p.has("inline_message_id"):
        raise bad_request("inline messages are not supported by the sandbox")
    _, conversation, _ = world.resolve_for_bot(bot, _chat_id(p))
    stored = _find_message(conversation, p.int("message_id"), "message to edit not found")
    if stored.sender_id != bot.id:
        raise bad_request("message can't be edited")
    return stored


def _not_modified() -> ApiError:
    return bad_request(
        "message is not modified: specified new message content and reply markup are exactly the same as a "
        "current content and reply markup of the message"
    )


def _apply_markup(data: JSON, markup: JSON | None) -> None:
    if markup is not None and "inline_keyboard" in markup:
        data["reply_markup"] = markup
    else:
        data.pop("reply_markup", None)


@method("editMessageText")
async def edit_message_text(world: World, bot: BotAccount, p: Params) -> JSON:
    stored = _editable(world, bot, p)
    if "text" not in stored.data:
        raise bad_request("there is no text in the message to edit")
    text, entities = _text_and_entities(world, p, "text", MAX_TEXT, required=True)
    markup = _validate_reply_markup(p.json("reply_markup"))
    before = (stored.data.get("text"), stored.data.get("entities", []), stored.data.get("reply_markup"))
    after_markup = markup if markup is not None and "inline_keyboard" in markup else None
    if before == (text, entities, after_markup):
        raise _not_modified()
    stored.data["text"] = text
    if entities:
        stored.data["entities"] = entities
    else:
        stored.data.pop("entities", None)
    _apply_markup(stored.data, markup)
    stored.data["edit_date"] = int(world.clock.now())
    world.touch()
    return dict(stored.data)


@method("editMessageCaption")
async def edit_message_caption(world: World, bot: BotAccount, p: Params) -> JSON:
    stored = _editable(world, bot, p)
    if "text" in stored.data:
        raise bad_request("there is no caption in the message to edit")
    caption, entities = _text_and_entities(world, p, "caption", MAX_CAPTION, required=False)
    markup = _validate_reply_markup(p.json("reply_markup"))
    if caption:
        stored.data["caption"] = caption
    else:
        stored.data.pop("caption", None)
    if entities:
        stored.data["caption_entities"] = entities
    else:
        stored.data.pop("caption_entities", None)
    _apply_markup(stored.data, markup)
    stored.data["edit_date"] = int(world.clock.now())
    world.touch()
    return dict(stored.data)


@method("editMessageReplyMarkup")
async def edit_message_reply_markup(world: World, bot: BotAccount, p: Params) -> JSON:
    stored = _editable(world, bot, p)
    markup = _validate_reply_markup(p.json("reply_markup"))
    new = markup if markup is not None and "inline_keyboard" in markup else None
    if stored.data.get("reply_markup") == new:
        raise _not_modified()
    _apply_markup(stored.data, markup)
    stored.data["edit_date"] = int(world.clock.now())
    world.touch()
    return dict(stored.data)


def _delete_one(
    world: World, bot: BotAccount, conversation: Conversation, group: Group | None, mid: int
) -> None:
    stored = _find_message(conversation, mid, "message to delete not found")
    if world.clock.now() - stored.date > DELETE_WINDOW_SECONDS:
        raise bad_request("message can't be deleted for everyone")
    if group is not None and stored.sender_id != bot.id:
        member = group.members.get(bot.id)
        if (
            member is None
            or member.status not in ("creator", "administrator")
            or not member.can_delete_messages
        ):
            raise bad_request("message can't be deleted")
    stored.deleted = True
    if mid in conversation.pinned:
        conversation.pinned.remove(mid)


@method("deleteMessage")
async def delete_message(world: World, bot: BotAccount, p: Params) -> bool:
    _, conversation, group = world.resolve_for_bot(bot, _chat_id(p))
    _delete_one(world, bot, conversation, group, p.int("message_id", 0) or 0)
    world.touch()
    return True


@method("deleteMessages")
async def delete_messages(world: World, bot: BotAccount, p: Params) -> bool:
    _, conversation, group = world.resolve_for_bot(bot, _chat_id(p))
    ids = p.json("message_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
        raise bad_request("message_ids must be a list of 1-100 identifiers")
    deleted = 0
    for mid in ids:
        try:
            _delete_one(world, bot, conversation, group, int(mid))
            deleted += 1
        except ApiError:
            continue  # Telegram skips messages it cannot find or delete
    if deleted == 0:
        raise bad_request("message to delete not found")
    world.touch()
    return True


# ---------------------------------------------------------------------------------------------- callbacks


@method("answerCallbackQuery")
async def answer_callback_query(world: World, bot: BotAccount, p: Params) -> bool:
    query = world.callbacks.get(p.str("callback_query_id") or "")
    expired = query is None or query.answered or world.clock.now() - query.created > CALLBACK_TTL_SECONDS
    if query is None or expired or query.bot_id != bot.id:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    text = p.str("text") or ""
    if len(text) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    query.answered = True
    query.answer = {"text": text, "show_alert": p.bool("show_alert"), "url": p.str("url")}
    world.touch()
    return True


# ---------------------------------------------------------------------------------------------- files


@method("getFile")
async def get_file(world: World, bot: BotAccount, p: Params) -> JSON:
    stored = world.files.get(p.str("file_id") or "")
    if stored is None:
        raise bad_request("invalid file_id")
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": len(stored.data),
        "file_path": stored.file_path,
    }


# ---------------------------------------------------------------------------------------------- groups


def _forum(world: World, bot: BotAccount, p: Params) -> Group:
    _, _, group = world.resolve_for_bot(bot, _chat_id(p))
    if group is None or not group.is_forum:
        raise bad_request("the chat is not a forum")
    member = group.members[bot.id]
    if member.status not in ("creator", "administrator") or not member.can_manage_topics:
        raise bad_request("not enough rights to manage topics")
    return group


def _topic(group: Group, p: Params) -> Topic:
    topic = group.topics.get(p.int("message_thread_id", 0) or 0)
    if topic is None:
        raise bad_request("message thread not found")
    return topic


def topic_service_message(world: World, group: Group, sender: JSON, thread_id: int, content: JSON) -> JSON:
    """Post a forum service message (created, edited, closed, reopened) into a topic."""
    conversation = group.conversation
    message: JSON = {
        "message_id": thread_id if "forum_topic_created" in content else conversation.new_id(),
        "from": sender,
        "chat": group.chat_json(),
        "date": int(world.clock.now()),
        "message_thread_id": thread_id,
        "is_topic_message": True,
        **content,
    }
    return world.store(conversation, message, int(sender["id"]))


def create_topic(world: World, group: Group, sender: JSON, name: str, icon_color: int) -> Topic:
    """Create a topic; its id is the id of the service message that opens it, as on Telegram."""
    if not 1 <= len(name) <= 128:
        raise bad_request("TOPIC_NAME_INVALID" if name else "topic name is empty")
    if icon_color not in FORUM_ICON_COLORS:
        raise bad_request("TOPIC_ICON_COLOR_INVALID")
    thread_id = group.conversation.new_id()
    topic = Topic(thread_id, name, icon_color)
    group.topics[thread_id] = topic
    message = topic_service_message(
        world, group, sender, thread_id, {"forum_topic_created": {"name": name, "icon_color": icon_color}}
    )
    for other in world.bots_in(group):
        world.emit(other, "message", message)
    return topic


@method("createForumTopic")
async def create_forum_topic(world: World, bot: BotAccount, p: Params) -> JSON:
    group = _forum(world, bot, p)
    name = p.str("name") or ""
    topic = create_topic(world, group, bot.user_json(), name, p.int("icon_color", FORUM_ICON_COLORS[0]) or 0)
    return {"message_thread_id": topic.message_thread_id, "name": topic.name, "icon_color": topic.icon_color}


@method("editForumTopic")
async def edit_forum_topic(world: World, bot: BotAccount, p: Params) -> bool:
    group = _forum(world, bot, p)
    topic = _topic(group, p)
    name = p.str("name")
    if name is not None and not 1 <= len(name) <= 128:
        raise bad_request("TOPIC_NAME_INVALID")
    if name is None or name == topic.name:
        raise bad_request("TOPIC_NOT_MODIFIED")
    topic.name = name
    topic_service_message(
        world, group, bot.user_json(), topic.message_thread_id, {"forum_topic_edited": {"name": name}}
    )
    return True


async def _set_closed(world: World, bot: BotAccount, p: Params, closed: bool) -> bool:
    group = _forum(world, bot, p)
    topic = _topic(group, p)
    if topic.is_closed == closed:
        raise bad_request("TOPIC_NOT_MODIFIED")
    topic.is_closed = closed
    key = "forum_topic_closed" if closed else "forum_topic_reopened"
    topic_service_message(world, group, bot.user_json(), topic.message_thread_id, {key: {}})
    return True


@method("closeForumTopic")
async def close_forum_topic(world: World, bot: BotAccount, p: Params) -> bool:
    return await _set_closed(world, bot, p, True)


@method("reopenForumTopic")
async def reopen_forum_topic(world: World, bot: BotAccount, p: Params) -> bool:
    return await _set_closed(world, bot, p, False)


def delete_topic(world: World, group: Group, thread_id: int) -> None:
    """Remove a topic and every message in it."""
    group.topics.pop(thread_id, None)
    for stored in group.conversation.messages.values():
        if stored.data.get("message_thread_id") == thread_id:
            stored.deleted = True
    world.touch()


@method("deleteForumTopic")
async def delete_forum_topic(world: World, bot: BotAccount, p: Params) -> bool:
    group = _forum(world, bot, p)
    delete_topic(world, group, _topic(group, p).message_thread_id)
    return True


def _require_pin_rights(bot: BotAccount, group: Group | None) -> None:
    if group is None:
        return
    member = group.members[bot.id]
    if member.status not in ("creator", "administrator") or not member.can_pin_messages:
        raise bad_request("not enough rights to manage pinned messages in the chat")


@method("pinChatMessage")
async def pin_chat_message(world: World, bot: BotAccount, p: Params) -> bool:
    _, conversation, group = world.resolve_for_bot(bot, _chat_id(p))
    _require_pin_rights(bot, group)
    message_id = p.int("message_id", 0) or 0
    _find_message(conversation, message_id, "message to pin not found")
    if message_id not in conversation.pinned:
        conversation.pinned.append(message_id)
    world.touch()
    return True


@method("unpinChatMessage")
async def unpin_chat_message(world: World, bot: BotAccount, p: Params) -> bool:
    _, conversation, group = world.resolve_for_bot(bot, _chat_id(p))
    _require_pin_rights(bot, group)
    message_id = p.int("message_id")
    if message_id is None:
        conversation.pinned.clear()
    elif message_id in conversation.pinned:
        conversation.pinned.remove(message_id)
    world.touch()
    return True


_ACCEPTED_GIFTS = {
    "unlimited_gifts": False,
    "limited_gifts": False,
    "unique_gifts": False,
    "premium_subscription": False,
    "gifts_from_channels": False,
}


@method("getChat")
async def get_chat(world: World, bot: BotAccount, p: Params) -> JSON:
    chat, _, group = world.resolve_for_bot(bot, _chat_id(p))
    info: JSON = {
        **chat,
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": _ACCEPTED_GIFTS,
    }
    if group is not None and group.conversation.pinned:
        pinned = group.conversation.get(group.conversation.pinned[-1])
        if pinned is not None:
            info["pinned_message"] = pinned.data
    return info


def member_json(world: World, group: Group, user_id: int) -> JSON:
    """A ChatMember object in the shape of its status."""
    user = world.user_json(user_id)
    member = group.members.get(user_id)
    status = member.status if member else "left"
    if status == "creator":
        return {"status": "creator", "user": user, "is_anonymous": False}
    if status == "administrator" and member is not None:
        return {
            "status": "administrator",
            "user": user,
            "can_be_edited": False,
            "is_anonymous": False,
            "can_manage_chat": True,
            "can_delete_messages": member.can_delete_messages,
            "can_manage_video_chats": False,
            "can_restrict_members": False,
            "can_promote_members": False,
            "can_change_info": False,
            "can_invite_users": True,
            "can_post_stories": False,
            "can_edit_stories": False,
            "can_delete_stories": False,
            "can_pin_messages": member.can_pin_messages,
            "can_manage_topics": member.can_manage_topics,
        }
    if status == "kicked":
        return {"status": "kicked", "user": user, "until_date": 0}
    return {"status": status if status in ("member", "left") else "member", "user": user}


@method("getChatMember")
async def get_chat_member(world: World, bot: BotAccount, p: Params) -> JSON:
    _, _, group = world.resolve_for_bot(bot, _chat_id(p))
    user_id = p.int("user_id", 0) or 0
    if user_id not in world.humans and user_id not in world.bots:
        raise bad_request("user not found")
    if group is None:
        return {"status": "member", "user": world.user_json(user_id)}
    return member_json(world, group, user_id)


@method("getChatAdministrators")
async def get_chat_administrators(world: World, bot: BotAccount, p: Params) -> list[JSON]:
    _, _, group = world.resolve_for_bot(bot, _chat_id(p))
    if group is None:
        raise bad_request("there are no administrators in the private chat")
    return [
        member_json(world, group, uid)
        for uid, member in group.members.items()
        if member.status in ("creator", "administrator")
    ]


@method("getChatMemberCount")
async def get_chat_member_count(world: World, bot: BotAccount, p: Params) -> int:
    _, _, group = world.resolve_for_bot(bot, _chat_id(p))
    return 2 if group is None else sum(1 for uid in group.members if group.is_member(uid))


# ---------------------------------------------------------------------------------------------- commands

_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")


def _scope_key(p: Params) -> str:
    scope = p.json("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True) + "|" + (p.str("language_code") or "")


@method("setMyCommands")
async def set_my_commands(world: World, bot: BotAccount, p: Params) -> bool:
    commands = p.json("commands")
    if not isinstance(commands, list) or len(commands) > 100:
        raise bad_request("commands must be a list of at most 100 commands")
    for command in commands:
        if not isinstance(command, dict) or not _COMMAND.match(str(command.get("command", ""))):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(str(command.get("description", ""))) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    bot.commands[_scope_key(p)] = commands
    return True


@method("getMyCommands")
async def get_my_commands(world: World, bot: BotAccount, p: Params) -> list[JSON]:
    return bot.commands.get(_scope_key(p), [])


@method("deleteMyCommands")
async def delete_my_commands(world: World, bot: BotAccount, p: Params) -> bool:
    bot.commands.pop(_scope_key(p), None)
    return True


def new_callback_id() -> str:
    return str(secrets.randbits(63))


def text_length(text: str) -> int:
    """Telegram's text length, counted in UTF-16 code units."""
    return utf16_len(text)
