"""The Telegram side of alert delivery: topics, cards and notices in the coordinators' chat.

Translates python-telegram-bot's errors into the dispatcher's delivery outcomes. Order matters:
`BadRequest` and `TimedOut` are `NetworkError` subclasses, and `ChatMigrated` and `RetryAfter` must be
caught before anything broader.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from telegram import Bot
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot.domain.gazetteer import Gazetteer
from bot.domain.records import CaseView, OutboxKind
from bot.i18n import Translator
from bot.services.alerts import ChatMoved, DeliveryError, GiveUp, TopicGone, TryAgain
from handlers.coordinators.cards import (
    card_markup,
    card_text,
    digest_text,
    notice_text,
    operator_alert_text,
    topic_name,
)

_LOG = logging.getLogger(__name__)
T = TypeVar("T")
_THREAD_GONE = ("message thread not found", "topic_deleted", "topic_closed", "thread not found")
_NOT_FORUM = ("the chat is not a forum", "not a forum")


def _seconds(value: int | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def call(awaitable: Awaitable[T]) -> T:
    """Await a Bot API call, turning Telegram's errors into delivery outcomes."""
    try:
        return await awaitable
    except RetryAfter as error:
        raise TryAgain("rate limited", retry_after=_seconds(error.retry_after)) from None
    except ChatMigrated as error:
        raise ChatMoved(error.new_chat_id) from None
    except BadRequest as error:
        if any(marker in error.message.lower() for marker in _THREAD_GONE):
            raise TopicGone(error.message) from None
        raise GiveUp(error.message) from None
    except Forbidden as error:
        raise GiveUp(error.message) from None
    except NetworkError as error:  # TimedOut, connection errors, 5xx
        raise TryAgain(type(error).__name__, outcome_unknown=_maybe_done(error)) from None
    except TelegramError as error:
        raise GiveUp(type(error).__name__) from None


def _maybe_done(error: NetworkError) -> bool:
    """Whether the request may have been carried out although no answer came back.

    A timeout or a connection broken mid-request (PTB: "httpx.<Error>") leaves it unknown, except when the
    request never left (PTB's pool timeout, a refused connection). An HTTP error status is an answer.
    """
    if isinstance(error, TimedOut):
        return "not* sent" not in error.message
    return error.message.startswith("httpx.") and not error.message.startswith("httpx.ConnectError")


def _flagged(t: Translator, text: str, possible_duplicate: bool) -> str:
    """`text`, with the possible-duplicate warning below it when asked."""
    if not possible_duplicate:
        return text
    # TRANSLATORS: Added below a ticket card or notice in the coordinators' group when the bot was stopped
    # (or lost the connection) while posting it, so that coordinators do not count one case twice.
    warning = t.gettext("⚠️ Possible duplicate: sending was interrupted, so this may have been posted twice.")
    return f"{text}\n\n{warning}"


class TelegramAlertGateway:
    """Posts tickets in the coordinators' language and time zone.

    `bot` has no rate limiter of its own: the dispatcher paces the group and handles 429 itself, so that
    no retry sleeps inside a call while a more urgent alert waits.
    """

    def __init__(
        self,
        bot: Bot,
        translator: Translator | Callable[[int], Translator],
        gazetteer: Gazetteer,
        timezone: ZoneInfo,
        operators: Sequence[int] = (),
        *,
        full: bool = False,
    ) -> None:
        self.bot = bot
        # One language for every chat, or the language chosen for each chat (group /language, staff).
        self._translator = translator
        self.gazetteer = gazetteer
        self.timezone = timezone
        self.operators = tuple(operators)
        self.full = full

    def t(self, chat_id: int) -> Translator:
        """The language of ``chat_id`` (a coordinators' group, or a member of staff's private chat)."""
        if isinstance(self._translator, Translator):
            return self._translator
        return self._translator(chat_id)

    async def open_topic(self, chat_id: int, case: CaseView) -> int | None:
        try:
            topic = await call(self.bot.create_forum_topic(chat_id, topic_name(case, self.gazetteer)))
        except GiveUp as error:
            if any(marker in str(error).lower() for marker in _NOT_FORUM):
                return None  # a plain group: one alerts thread, the cards are posted in the chat itself
            raise
        return topic.message_thread_id

    def _card_text(self, chat_id: int, case: CaseView, possible_duplicate: bool) -> str:
        t = self.t(chat_id)
        return _flagged(
            t, card_text(t, case, self.gazetteer, self.timezone, full=self.full), possible_duplicate
        )

    async def post_card(
        self, chat_id: int, thread_id: int | None, case: CaseView, *, possible_duplicate: bool = False
    ) -> int:
        message = await call(
            self.bot.send_message(
                chat_id,
                self._card_text(chat_id, case, possible_duplicate),
                message_thread_id=thread_id,
                reply_markup=card_markup(self.t(chat_id), case),
            )
        )
        return message.message_id

    async def update_card(
        self, chat_id: int, message_id: int, case: CaseView, *, possible_duplicate: bool = False
    ) -> None:
        try:
            await call(
                self.bot.edit_message_text(
                    self._card_text(chat_id, case, possible_duplicate),
                    chat_id=chat_id,
                    message_id=message_id,
                    reply_markup=card_markup(self.t(chat_id), case),
                )
            )
        except GiveUp as error:
            if "message is not modified" in str(error).lower():
                return  # already up to date (a retry after a crash)
            if "message to edit not found" in str(error).lower():
                raise TopicGone(str(error)) from None
            raise

    async def rename_topic(self, chat_id: int, thread_id: int, case: CaseView) -> None:
        try:
            await call(self.bot.edit_forum_topic(chat_id, thread_id, name=topic_name(case, self.gazetteer)))
        except GiveUp as error:
            if "not_modified" in str(error).lower() or "not modified" in str(error).lower():
                return  # the name did not change
            raise

    async def post_notice(
        self,
        chat_id: int,
        thread_id: int | None,
        case: CaseView,
        kind: OutboxKind,
        *,
        possible_duplicate: bool = False,
    ) -> None:
        t = self.t(chat_id)
        text = _flagged(t, notice_text(t, kind), possible_duplicate)
        await call(self.bot.send_message(chat_id, text, message_thread_id=thread_id))

    async def post_digest(self, chat_id: int, cases: Sequence[CaseView]) -> None:
        await call(self.bot.send_message(chat_id, digest_text(self.t(chat_id), cases, self.gazetteer)))

    async def alert_operators(self, text_code: str, case_id: str) -> None:
        """Best effort: tell each admin privately (only those who have started the bot can be reached)."""
        del text_code  # one kind of operator alert today: an undeliverable ticket
        for operator in self.operators:
            try:
                await call(self.bot.send_message(operator, operator_alert_text(self.t(operator), case_id)))
            except DeliveryError as error:
                _LOG.warning("Operator alert not delivered: %s", type(error).__name__)
