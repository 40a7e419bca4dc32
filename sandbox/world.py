"""The emulated Telegram world: bots, humans, chats, messages, updates, files, faults, limits and a clock.

Everything here is in memory and single-threaded (one asyncio loop). The Bot API layer (`botapi.py`) and the
control API (`control.py`) both act on one `World`.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import math
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sandbox.errors import ApiError, bad_request, forbidden, too_many_requests

JSON = dict[str, Any]

# Telegram keeps undelivered updates for 24 hours and lets bots delete messages for 48.
UPDATE_TTL_SECONDS = 24 * 3600
DELETE_WINDOW_SECONDS = 48 * 3600
CALLBACK_TTL_SECONDS = 15 * 60
DEFAULT_ALLOWED_UPDATES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "callback_query",
        "inline_query",
        "chosen_inline_result",
        "shipping_query",
        "pre_checkout_query",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
    }
)
FORUM_ICON_COLORS = (7322096, 16766590, 13338331, 9367192, 16749490, 16478047)
MEMBER_STATUSES = ("creator", "administrator", "member", "restricted", "left", "kicked")


class ControlError(Exception):
    """A control-API request that cannot be carried out (answered with HTTP 400 or 404)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Clock:
    """Wall-clock time plus an offset the tests can move forward."""

    offset: float = 0.0

    def now(self) -> float:
        return time.time() + self.offset


@dataclass
class Limits:
    """Telegram's flood limits as the sandbox enforces them; tests and benchmarks may relax them."""

    enabled: bool = True
    per_chat_per_second: float = 1.0
    per_chat_burst: float = 3.0
    per_group_per_minute: float = 20.0

    def as_json(self) -> JSON:
        return {
            "enabled": self.enabled,
            "per_chat_per_second": self.per_chat_per_second,
            "per_chat_burst": self.per_chat_burst,
            "per_group_per_minute": self.per_group_per_minute,
        }


@dataclass
class Bucket:
    """A token bucket measured on the sandbox clock."""

    tokens: float
    updated: float


@dataclass
class Webhook:
    url: str
    secret_token: str | None
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class BotAccount:
    id: int
    token: str
    username: str
    first_name: str
    updates: deque[JSON] = field(default_factory=deque)
    next_update_id: int = field(default_factory=lambda: secrets.randbelow(10**8) + 10**8)
    allowed_updates: frozenset[str] = DEFAULT_ALLOWED_UPDATES
    webhook: Webhook | None = None
    commands: dict[str, list[JSON]] = field(default_factory=dict)
    new_update: asyncio.Event = field(default_factory=asyncio.Event)
    poller: int = 0  # the generation of the getUpdates call allowed to wait; a newer call evicts older ones

    def user_json(self) -> JSON:
        return {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username}


@dataclass
class Human:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    blocked_bots: set[int] = field(default_factory=set)

    def user_json(self) -> JSON:
        user: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user


@dataclass
class Member:
    status: str
    can_manage_topics: bool = False
    can_delete_messages: bool = False
    can_pin_messages: bool = False


@dataclass
class Topic:
    message_thread_id: int
    name: str
    icon_color: int
    is_closed: bool = False

    def as_json(self) -> JSON:
        return {
            "message_thread_id": self.message_thread_id,
            "name": self.name,
            "icon_color": self.icon_color,
            "is_closed": self.is_closed,
        }


@dataclass
class StoredMessage:
    data: JSON
    sender_id: int
    date: float
    deleted: bool = False


@dataclass
class Conversation:
    """The message history of one chat as its members see it; a private chat has one per bot."""

    messages: dict[int, StoredMessage] = field(default_factory=dict)
    next_message_id: int = 1
    keyboard: JSON | None = None
    pinned: list[int] = field(default_factory=list)
    started: bool = False

    def new_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    def get(self, message_id: int) -> StoredMessage | None:
        stored = self.messages.get(message_id)
        return None if stored is None or stored.deleted else stored


@dataclass
class Group:
    id: int
    type: str  # "group" or "supergroup"
    title: str
    is_forum: bool
    username: str | None = None
    members: dict[int, Member] = field(default_factory=dict)
    topics: dict[int, Topic] = field(default_factory=dict)
    migrated_to: int | None = None
    conversation: Conversation = field(default_factory=Conversation)

    def chat_json(self) -> JSON:
        chat: JSON = {"id": self.id, "type": self.type, "title": self.title}
        if self.is_forum:
            chat["is_forum"] = True
        if self.username:
            chat["username"] = self.username
        return chat

    def is_member(self, user_id: int) -> bool:
        member = self.members.get(user_id)
        return member is not None and member.status in ("creator", "administrator", "member", "restricted")


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    mime_type: str


@dataclass
class CallbackQuery:
    id: str
    bot_id: int
    created: float
    answered: bool = False
    answer: JSON = field(default_factory=dict)


@dataclass
class Fault:
    """An injected failure: it answers the next `count` matching calls, or, with `ends` (a
    `time.monotonic()` instant), every matching call until then: an outage of the Bot API."""

    id: str
    method: str
    kind: str
    count: int
    options: JSON
    ends: float | None = None

    def expired(self, now: float) -> bool:
        return self.ends is not None and now >= self.ends

    def matches(self, method: str, bot_id: int, chat_id: str | None) -> bool:
        if self.method != "*" and self.method.lower() != method.lower():
            return False
        if "bot_id" in self.options and int(self.options["bot_id"]) != bot_id:
            return False
        return not ("chat_id" in self.options and str(self.options["chat_id"]) != str(chat_id))

    def as_json(self) -> JSON:
        found: JSON = {"id": self.id, "method": self.method, "kind": self.kind, "count": self.count}
        if self.ends is not None:
            found["remaining_seconds"] = round(max(0.0, self.ends - time.monotonic()), 3)
        return {**found, **self.options}


# The longest outage a fault may describe: long enough for any test of backoff, short enough that a
# forgotten one cannot wedge a demo for good.
MAX_FAULT_DURATION_SECONDS = 3600.0
FAULT_KINDS = (
    "retry_after",
    "server_error",
    "bad_gateway",
    "hang",
    "reset",
    "chat_not_found",
    "thread_not_found",
    "kicked",
    "blocked",
    "migrated",
    "bad_request",
    "unauthorized",
)


class World:
    """All state of the emulated Telegram, with the rules that both APIs share."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.clock = Clock()
        self.limits = limits or Limits()
        self.bots: dict[int, BotAccount] = {}
        self.tokens: dict[str, BotAccount] = {}
        self.stopping = asyncio.Event()
        self._version = 0
        self._changed = asyncio.Event()
        self.reset(keep_bots=False)

    # ------------------------------------------------------------------ lifecycle and notification

    def reset(self, keep_bots: bool = True) -> None:
        """Forget every human, chat, message, file, fault and call; keep registered bots unless told."""
        self.humans: dict[int, Human] = {}
        self.groups: dict[int, Group] = {}
        self.private: dict[tuple[int, int], Conversation] = {}
        self.files: dict[str, StoredFile] = {}
        self.callbacks: dict[str, CallbackQuery] = {}
        self.faults: list[Fault] = []
        self.buckets: dict[tuple[int, int, str], Bucket] = {}
        self.calls: deque[JSON] = deque(maxlen=200_000)
        self.call_seq = itertools.count(1)
        self.clock.offset = 0.0
        self._user_ids = itertools.count(700_000_001 + secrets.randbelow(10**6) * 100)
        self._group_ids = itertools.count(4_000_000_001 + secrets.randbelow(10**6) * 100)
        if keep_bots:
            for bot in self.bots.values():
                bot.updates.clear()
                bot.webhook = None
                bot.allowed_updates = DEFAULT_ALLOWED_UPDATES
                bot.commands.clear()
        else:
            self.bots = {}
            self.tokens = {}
        self.touch()

    @property
    def version(self) -> int:
        return self._version

    def touch(self) -> None:
        """Record that something visible changed and wake every waiting UI."""
        self._version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_version(self, after: int, timeout: float) -> int:  # noqa: ASYNC109 (the events timeout)
        """Wait until the version exceeds `after` or `timeout` passes; return the version."""
        deadline = time.monotonic() + timeout
        while self._version <= after and not self.stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                break
        return self._version

    # ------------------------------------------------------------------ accounts

    def add_bot(self, token: str, username: str | None = None, first_name: str | None = None) -> BotAccount:
        """Register a bot token (`<digits>:<secret>`); registering it again updates its names."""
        bot_id_text, _, secret = token.partition(":")
        if not bot_id_text.isdigit() or not secret:
            raise ControlError("a bot token looks like 123456789:secret")
        bot_id = int(bot_id_text)
        existing = self.bots.get(bot_id)
        if existing is not None and existing.token != token:
            raise ControlError("another token is registered for this bot id")
        if existing is None:
            existing = BotAccount(
                id=bot_id,
                token=token,
                username=username or f"sandbox{bot_id}_bot",
                first_name=first_name or "Sandbox Bot",
            )
            self.bots[bot_id] = existing
            self.tokens[token] = existing
        else:
            existing.username = username or existing.username
            existing.first_name = first_name or existing.first_name
        self.touch()
        return existing

    def bot_by_token(self, token: str) -> BotAccount:
        bot = self.tokens.get(token)
        if bot is None:
            raise ApiError(401, "Unauthorized")
        return bot

    def add_human(
        self,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        user_id: int | None = None,
    ) -> Human:
        if not first_name or len(first_name) > 64:
            raise ControlError("first_name must be 1-64 characters")
        if user_id is None:
            user_id = next(self._user_ids)
        if user_id <= 0 or user_id in self.humans or user_id in self.bots:
            raise ControlError("that user id is taken or invalid")
        human = Human(user_id, first_name, last_name, username, language_code)
        self.humans[user_id] = human
        self.touch()
        return human

    def human(self, user_id: int) -> Human:
        human = self.humans.get(user_id)
        if human is None:
            raise ControlError(f"no user {user_id}", 404)
        return human

    def user_json(self, user_id: int) -> JSON:
        if user_id in self.bots:
            return self.bots[user_id].user_json()
        return self.human(user_id).user_json()

    # ------------------------------------------------------------------ chats

    def new_group(self, title: str, *, supergroup: bool, forum: bool) -> Group:
        if not title or len(title) > 128:
            raise ControlError("title must be 1-128 characters")
        if forum and not supergroup:
            raise ControlError("only a supergroup can be a forum")
        raw = next(self._group_ids)
        group_id = -(1_000_000_000_000 + raw) if supergroup else -(raw % 1_000_000_000 + 1000)
        group = Group(group_id, "supergroup" if supergroup else "group", title, forum)
        self.groups[group_id] = group
        self.touch()
        return group

    def group(self, chat_id: int) -> Group:
        group = self.groups.get(chat_id)
        if group is None:
            raise ControlError(f"no group {chat_id}", 404)
        return group

    def private_conversation(self, bot_id: int, user_id: int) -> Conversation:
        key = (bot_id, user_id)
        conversation = self.private.get(key)
        if conversation is None:
            conversation = self.private[key] = Conversation()
        return conversation

    def private_chat_json(self, user_id: int) -> JSON:
        human = self.human(user_id)
        chat: JSON = {"id": human.id, "type": "private", "first_name": human.first_name}
        if human.last_name:
            chat["last_name"] = human.last_name
        if human.username:
            chat["username"] = human.username
        return chat

    def resolve_for_bot(self, bot: BotAccount, chat_id: Any) -> tuple[JSON, Conversation, Group | None]:
        """Find the chat a bot names in a Bot API call, applying Telegram's access rules."""
        if isinstance(chat_id, str) and chat_id.startswith("@"):
            wanted = chat_id[1:].lower()
            for named in self.groups.values():
                if named.username and named.username.lower() == wanted:
                    chat_id = named.id
                    break
            else:
                raise bad_request("chat not found")
        try:
            numeric = int(chat_id)
        except (TypeError, ValueError):
            raise bad_request("chat not found") from None
        if numeric > 0:
            if numeric not in self.humans:
                raise bad_request("chat not found")
            conversation = self.private.get((bot.id, numeric))
            if conversation is None or not conversation.started:
                raise forbidden("bot can't initiate conversation with a user")
            if bot.id in self.humans[numeric].blocked_bots:
                raise forbidden("bot was blocked by the user")
            return self.private_chat_json(numeric), conversation, None
        group = self.groups.get(numeric)
        if group is None:
            raise bad_request("chat not found")
        if group.migrated_to is not None:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": group.migrated_to},
            )
        member = group.members.get(bot.id)
        if member is None or member.status == "left":
            raise forbidden(f"bot is not a member of the {group.type} chat")
        if member.status == "kicked":
            raise forbidden(f"bot was kicked from the {group.type} chat")
        return group.chat_json(), group.conversation, group

    # ------------------------------------------------------------------ updates

    def emit(self, bot: BotAccount, kind: str, payload: JSON) -> int | None:
        """Queue an update for `bot` if it wants this kind; return its update_id."""
        if kind not in bot.allowed_updates:
            return None
        update_id = bot.next_update_id
        bot.next_update_id += 1
        # A snapshot: later edits of the stored message must not rewrite an update already queued.
        snapshot = copy.deepcopy(payload)
        bot.updates.append({"update_id": update_id, kind: snapshot, "_created": self.clock.now()})
        bot.new_update.set()
        self.touch()
        return update_id

    def pending_updates(self, bot: BotAccount, offset: int | None, limit: int) -> list[JSON]:
        """Confirm updates below `offset` and return up to `limit` of the rest, oldest first."""
        horizon = self.clock.now() - UPDATE_TTL_SECONDS
        while bot.updates and bot.updates[0]["_created"] < horizon:
            bot.updates.popleft()
        if offset is not None:
            if offset < 0:
                while len(bot.updates) > -offset:
                    bot.updates.popleft()
            else:
                while bot.updates and bot.updates[0]["update_id"] < offset:
                    bot.updates.popleft()
        batch = list(itertools.islice(bot.updates, 0, limit))
        return [{k: v for k, v in update.items() if k != "_created"} for update in batch]

    def bots_in(self, group: Group) -> list[BotAccount]:
        return [self.bots[uid] for uid in group.members if uid in self.bots and group.is_member(uid)]

    # ------------------------------------------------------------------ messages

    def store(self, conversation: Conversation, message: JSON, sender_id: int) -> JSON:
        conversation.messages[message["message_id"]] = StoredMessage(message, sender_id, self.clock.now())
        self.touch()
        return message

    def topic_fields(self, group: Group | None, thread_id: int | None) -> JSON:
        """Thread fields of a message in a forum topic; raise Telegram's error for an unknown thread."""
        if group is None or not group.is_forum or not thread_id:
            return {}
        topic = group.topics.get(thread_id)
        if topic is None:
            raise bad_request("message thread not found")
        fields: JSON = {"message_thread_id": thread_id, "is_topic_message": True}
        opener = group.conversation.get(thread_id)
        if opener is not None:
            fields["reply_to_message"] = opener.data
        return fields

    def add_file(self, data: bytes, mime_type: str, folder: str, extension: str) -> StoredFile:
        file_id = "SBX" + secrets.token_urlsafe(24)
        unique = "U" + secrets.token_urlsafe(9)
        path = f"{folder}/file_{len(self.files)}.{extension}"
        stored = StoredFile(file_id, unique, path, data, mime_type)
        self.files[file_id] = stored
        return stored

    # ------------------------------------------------------------------ limits and faults

    def check_rate(self, bot: BotAccount, chat_id: int, is_group: bool) -> None:
        """Take one message from the chat's bucket or raise 429 with Telegram's retry_after."""
        if not self.limits.enabled:
            return
        if is_group:
            rate, capacity, kind = (
                self.limits.per_group_per_minute / 60.0,
                self.limits.per_group_per_minute,
                "g",
            )
        else:
            rate, capacity, kind = self.limits.per_chat_per_second, self.limits.per_chat_burst, "p"
        if rate <= 0:
            return
        now = self.clock.now()
        key = (bot.id, chat_id, kind)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Bucket(capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            raise too_many_requests(max(1, math.ceil((1.0 - bucket.tokens) / rate)))
        bucket.tokens -= 1.0

    def add_fault(
        self, method: str, kind: str, count: int, options: JSON, duration: float | None = None
    ) -> Fault:
        """Add a fault for the next `count` matching calls, or, with `duration`, for every matching call
        during that many seconds of real time (the sandbox clock does not shorten an outage)."""
        if kind not in FAULT_KINDS:
            raise ControlError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        if count < 1:
            raise ControlError("count must be at least 1")
        if duration is not None and not 0 < duration <= MAX_FAULT_DURATION_SECONDS:
            raise ControlError(f"duration must be more than 0 and at most {MAX_FAULT_DURATION_SECONDS:.0f} s")
        ends = None if duration is None else time.monotonic() + duration
        fault = Fault(secrets.token_hex(6), method or "*", kind, count, options, ends)
        self.faults.append(fault)
        return fault

    def live_faults(self) -> list[Fault]:
        """The faults still pending, after forgetting those whose window has ended."""
        now = time.monotonic()
        self.faults = [fault for fault in self.faults if not fault.expired(now)]
        return self.faults

    def take_fault(self, method: str, bot_id: int, chat_id: str | None) -> Fault | None:
        for fault in self.live_faults():
            if fault.matches(method, bot_id, chat_id):
                if fault.ends is None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    def record_call(self, bot_id: int, method: str, params: JSON, error: ApiError | None) -> None:
        self.calls.append(
            {
                "seq": next(self.call_seq),
                "bot_id": bot_id,
                "method": method,
                "chat_id": params.get("chat_id"),
                "message_thread_id": params.get("message_thread_id"),
                "ok": error is None,
                "error_code": error.code if error else None,
                "description": error.description if error else None,
                "time": self.clock.now(),
            }
        )
