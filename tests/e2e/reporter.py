"""A simulated reporter that walks Beacon's conversation through the sandbox, as a person would."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.client import SandboxClient

JSON = dict[str, Any]


@dataclass
class Reporter:
    """One person's private chat with the bot: send, press buttons by their callback data, read replies."""

    sb: SandboxClient
    bot_id: int
    user_id: int
    seen: int = 0
    log: list[JSON] = field(default_factory=list)

    async def messages(self) -> list[JSON]:
        return await self.sb.messages(self.user_id, bot_id=self.bot_id)

    async def bot_messages(self) -> list[JSON]:
        return [m for m in await self.messages() if m["from"]["is_bot"]]

    async def _after(self, sent_id: int, predicate: Any = None, timeout: float = 15.0) -> JSON:
        message = await self.sb.wait_for_message(
            self.user_id, bot_id=self.bot_id, after_message_id=sent_id, predicate=predicate, timeout=timeout
        )
        self.seen = max(self.seen, message["message_id"])
        return message

    async def send(self, text: str, *, expect: Any = None) -> JSON:
        """Type `text`; return the first bot message that follows (matching `expect` if given)."""
        sent = await self.sb.send_text(self.user_id, text, bot_id=self.bot_id)
        return await self._after(sent["message"]["message_id"], expect)

    async def send_content(self, *, expect: Any = None, **content: Any) -> JSON:
        sent = await self.sb.send(self.user_id, bot_id=self.bot_id, **content)
        return await self._after(sent["message"]["message_id"], expect)

    async def question(self, step: str, timeout: float = 15.0) -> JSON:
        """Wait for the newest bot message carrying buttons of `step` (callback data "s:<step>:...")."""

        async def found() -> JSON | None:
            for message in reversed(await self.bot_messages()):
                if any(d.startswith(f"s:{step}:") for d in _callback_data(message)):
                    return message
            return None

        result: JSON = await self.sb.wait_until(found, timeout=timeout)
        return result

    async def press(self, step: str, value: str, *, expect_next: bool = True) -> JSON | None:
        """Press the button `value` of the question for `step`; return the next bot message, if expected."""
        message = await self.question(step)
        data = f"s:{step}:{value}"
        assert data in _callback_data(message), f"{data} not offered; buttons: {_callback_data(message)}"
        latest = max([m["message_id"] for m in await self.messages()], default=0)
        result = await self.sb.press_button(
            self.user_id, message["message_id"], data=data, bot_id=self.bot_id
        )
        self.log.append(result)
        if not expect_next:
            return None
        return await self._after(latest)

    async def callback_answer(self, result: JSON) -> JSON:
        return await self.sb.callback_answer(result["callback_query_id"])

    # ------------------------------------------------------------------ step-exact helpers

    async def last_id(self) -> int:
        """The id of the newest message in the chat (either side), 0 when it is empty."""
        return max([m["message_id"] for m in await self.messages()], default=0)

    async def question_after(self, step: str, after: int, timeout: float = 15.0) -> JSON:
        """Wait for a bot message newer than `after` carrying buttons of `step`."""
        message = await self.sb.wait_for_message(
            self.user_id,
            bot_id=self.bot_id,
            after_message_id=after,
            predicate=lambda m: any(d.startswith(f"s:{step}:") for d in _callback_data(m)),
            timeout=timeout,
        )
        self.seen = max(self.seen, message["message_id"])
        return message

    async def reply_after(self, after: int, predicate: Any = None, timeout: float = 15.0) -> JSON:
        """Wait for the first bot message newer than `after` (matching `predicate` if given)."""
        return await self._after(after, predicate, timeout)

    async def choose(self, step: str, value: str, *, then: str | None = None) -> JSON | None:
        """Press `value` on the question for `step`; with `then`, wait for that step's question."""
        mark = await self.last_id()
        await self.press(step, value, expect_next=False)
        return await self.question_after(then, mark) if then else None

    async def toggle(self, step: str, value: str, *, on: bool) -> JSON:
        """Press a multi-select button and wait until it is redrawn ticked (`on`) or unticked."""
        await self.press(step, value, expect_next=False)
        data = f"s:{step}:{value}"

        async def redrawn() -> JSON | None:
            message = await self.question(step)
            for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
                for b in row:
                    if b.get("callback_data") == data and b["text"].startswith("✅") == on:
                        return message
            return None

        result: JSON = await self.sb.wait_until(redrawn, timeout=15.0)
        return result

    async def answer_of(self, result: JSON, timeout: float = 15.0) -> JSON:
        """Wait until the bot answered the callback query `result`; return the answer."""

        async def answered() -> JSON | None:
            answer = await self.callback_answer(result)
            return answer if answer["answered"] else None

        found: JSON = await self.sb.wait_until(answered, timeout=timeout)
        return found


def _callback_data(message: JSON) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b.get("callback_data", "") for row in markup.get("inline_keyboard", []) for b in row]


def button_labels(message: JSON) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]
