"""An async client for the sandbox's control API, used by tests, benchmarks and the demo."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp

JSON = dict[str, Any]
MessagePredicate = Callable[[JSON], bool]


class SandboxError(Exception):
    """The control API refused a request; the message is its explanation."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class SandboxClient:
    """Play the humans of the sandbox: `async with SandboxClient(url) as sb: await sb.create_user("Ana")`."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout + 35)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SandboxClient:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def request(self, verb: str, path: str, body: JSON | None = None, query: JSON | None = None) -> Any:
        """Call the control API; raise SandboxError on a refusal."""
        params = {k: str(v) for k, v in (query or {}).items() if v is not None}
        async with self.session.request(verb, f"{self.base_url}{path}", json=body, params=params) as response:
            if response.content_type != "application/json":
                return await response.read()
            data = await response.json()
            if response.status >= 400:
                raise SandboxError(response.status, str(data.get("error", data)))
            return data

    # ------------------------------------------------------------------ world

    async def state(self) -> JSON:
        result: JSON = await self.request("GET", "/_sandbox/state")
        return result

    async def reset(self, *, keep_bots: bool = True) -> None:
        await self.request("POST", "/_sandbox/reset", {"keep_bots": keep_bots})

    async def wait_for_change(self, after: int, timeout: float = 25.0) -> int:  # noqa: ASYNC109 (sent to the server)
        result = await self.request("GET", "/_sandbox/events", query={"after": after, "timeout": timeout})
        return int(result["version"])

    async def create_bot(
        self, token: str, *, username: str | None = None, first_name: str | None = None
    ) -> JSON:
        result: JSON = await self.request(
            "POST", "/_sandbox/bots", {"token": token, "username": username, "first_name": first_name}
        )
        return result

    async def create_user(
        self,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        user_id: int | None = None,
    ) -> JSON:
        body = {
            "first_name": first_name,
            "last_name": last_name,
            "username": username,
            "language_code": language_code,
            "id": user_id,
        }
        result: JSON = await self.request("POST", "/_sandbox/users", body)
        return result

    async def block_bot(self, user_id: int, bot_id: int, *, blocked: bool = True) -> None:
        await self.request("POST", f"/_sandbox/users/{user_id}/block", {"bot_id": bot_id, "blocked": blocked})

    async def create_group(
        self,
        title: str,
        *,
        forum: bool = True,
        supergroup: bool = True,
        members: Iterable[int] = (),
        admins: Iterable[int] = (),
        bots: Iterable[JSON] = (),
        username: str | None = None,
    ) -> JSON:
        body = {
            "title": title,
            "forum": forum,
            "supergroup": supergroup,
            "members": list(members),
            "admins": list(admins),
            "bots": list(bots),
            "username": username,
        }
        result: JSON = await self.request("POST", "/_sandbox/groups", body)
        return result

    async def set_member(self, chat_id: int, user_id: int, status: str) -> JSON:
        result: JSON = await self.request(
            "POST", f"/_sandbox/groups/{chat_id}/members", {"user_id": user_id, "status": status}
        )
        return result

    async def migrate_group(self, chat_id: int) -> int:
        result = await self.request("POST", f"/_sandbox/groups/{chat_id}/migrate", {})
        return int(result["new_chat_id"])

    async def create_topic(self, chat_id: int, name: str, *, from_user_id: int | None = None) -> JSON:
        result: JSON = await self.request(
            "POST", f"/_sandbox/groups/{chat_id}/topics", {"name": name, "from_user_id": from_user_id}
        )
        return result

    async def delete_topic(self, chat_id: int, thread_id: int) -> None:
        await self.request("DELETE", f"/_sandbox/groups/{chat_id}/topics/{thread_id}")

    # ------------------------------------------------------------------ humans act

    async def send(
        self, user_id: int, *, bot_id: int | None = None, chat_id: int | None = None, **content: Any
    ) -> JSON:
        """Send any message: `content` is one of text=, location=, photo=, voice=, document=, contact=,
        sticker=, poll=."""
        body: JSON = {"from_user_id": user_id, "bot_id": bot_id, "chat_id": chat_id}
        body.update({k: v for k, v in content.items() if v is not None})
        result: JSON = await self.request("POST", "/_sandbox/messages", body)
        return result

    async def send_text(
        self,
        user_id: int,
        text: str,
        *,
        bot_id: int | None = None,
        chat_id: int | None = None,
        message_thread_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> JSON:
        return await self.send(
            user_id,
            bot_id=bot_id,
            chat_id=chat_id,
            text=text,
            message_thread_id=message_thread_id,
            reply_to_message_id=reply_to_message_id,
        )

    async def send_location(
        self, user_id: int, latitude: float, longitude: float, *, bot_id: int | None = None
    ) -> JSON:
        return await self.send(
            user_id, bot_id=bot_id, location={"latitude": latitude, "longitude": longitude}
        )

    async def send_photo(
        self,
        user_id: int,
        *,
        content: bytes | None = None,
        caption: str | None = None,
        bot_id: int | None = None,
    ) -> JSON:
        photo: JSON = {"caption": caption}
        if content is not None:
            photo["content_base64"] = base64.b64encode(content).decode()
        return await self.send(user_id, bot_id=bot_id, photo=photo)

    async def send_voice(self, user_id: int, *, duration: int = 2, bot_id: int | None = None) -> JSON:
        return await self.send(user_id, bot_id=bot_id, voice={"duration": duration})

    async def send_document(
        self, user_id: int, file_name: str, mime_type: str, content: bytes, *, bot_id: int | None = None
    ) -> JSON:
        document = {
            "file_name": file_name,
            "mime_type": mime_type,
            "content_base64": base64.b64encode(content).decode(),
        }
        return await self.send(user_id, bot_id=bot_id, document=document)

    async def send_contact(
        self, user_id: int, phone_number: str, first_name: str, *, bot_id: int | None = None
    ) -> JSON:
        return await self.send(
            user_id, bot_id=bot_id, contact={"phone_number": phone_number, "first_name": first_name}
        )

    async def send_sticker(self, user_id: int, emoji: str = "🙂", *, bot_id: int | None = None) -> JSON:
        return await self.send(user_id, bot_id=bot_id, sticker={"emoji": emoji})

    async def edit_message(
        self,
        user_id: int,
        message_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        bot_id: int | None = None,
    ) -> JSON:
        body = {
            "from_user_id": user_id,
            "chat_id": chat_id,
            "message_id": message_id,
            "text": text,
            "bot_id": bot_id,
        }
        result: JSON = await self.request("POST", "/_sandbox/messages/edit", body)
        return result

    async def press_button(
        self,
        user_id: int,
        message_id: int,
        *,
        chat_id: int | None = None,
        data: str | None = None,
        button_text: str | None = None,
        bot_id: int | None = None,
        forge: bool = False,
    ) -> JSON:
        body = {
            "from_user_id": user_id,
            "chat_id": chat_id,
            "message_id": message_id,
            "data": data,
            "button_text": button_text,
            "bot_id": bot_id,
            "forge": forge,
        }
        result: JSON = await self.request("POST", "/_sandbox/callbacks", body)
        return result

    async def callback_answer(self, callback_query_id: str) -> JSON:
        result: JSON = await self.request("GET", f"/_sandbox/callbacks/{callback_query_id}")
        return result

    # ------------------------------------------------------------------ observing

    async def transcript(
        self, chat_id: int, *, bot_id: int | None = None, thread_id: int | None = None
    ) -> JSON:
        result: JSON = await self.request(
            "GET", f"/_sandbox/chats/{chat_id}/transcript", query={"bot_id": bot_id, "thread_id": thread_id}
        )
        return result

    async def messages(
        self, chat_id: int, *, bot_id: int | None = None, thread_id: int | None = None
    ) -> list[JSON]:
        """The messages a human sees in the chat now, oldest first."""
        return list((await self.transcript(chat_id, bot_id=bot_id, thread_id=thread_id))["messages"])

    async def wait_for_message(
        self,
        chat_id: int,
        *,
        bot_id: int | None = None,
        predicate: MessagePredicate | None = None,
        after_message_id: int = 0,
        thread_id: int | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 (a deadline spanning many requests)
    ) -> JSON:
        """Wait for a message from a bot, newer than `after_message_id`, that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        version = 0
        while True:
            for message in await self.messages(chat_id, bot_id=bot_id, thread_id=thread_id):
                sender = message.get("from") or {}
                if (
                    sender.get("is_bot")
                    and message["message_id"] > after_message_id
                    and (predicate is None or predicate(message))
                ):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching bot message in chat {chat_id} within {timeout} s")
            version = await self.wait_for_change(version, timeout=min(remaining, 5.0))

    async def wait_until(self, check: Callable[[], Any], *, timeout: float = 10.0) -> Any:  # noqa: ASYNC109
        """Poll an async `check` (returning a truthy value when done) on every change of the world."""
        deadline = time.monotonic() + timeout
        version = 0
        while True:
            result = await check()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout} s")
            version = await self.wait_for_change(version, timeout=min(remaining, 1.0))

    async def file_bytes(self, file_id: str) -> bytes:
        data: bytes = await self.request("GET", f"/_sandbox/files/{file_id}")
        return data

    # ------------------------------------------------------------------ faults, clock, limits, calls

    async def inject_fault(self, method: str, kind: str, count: int = 1, **options: Any) -> str:
        result = await self.request(
            "POST", "/_sandbox/faults", {"method": method, "kind": kind, "count": count, **options}
        )
        return str(result["id"])

    async def faults(self) -> list[JSON]:
        return list((await self.request("GET", "/_sandbox/faults"))["faults"])

    async def clear_faults(self) -> None:
        await self.request("DELETE", "/_sandbox/faults")

    async def now(self) -> float:
        return float((await self.request("GET", "/_sandbox/clock"))["now"])

    async def advance_clock(self, seconds: float) -> float:
        return float((await self.request("POST", "/_sandbox/clock", {"advance": seconds}))["now"])

    async def set_limits(self, **limits: Any) -> JSON:
        result: JSON = await self.request("POST", "/_sandbox/limits", limits)
        return result

    async def calls(
        self, method: str | None = None, *, bot_id: int | None = None, after: int = 0
    ) -> list[JSON]:
        return list(
            (
                await self.request(
                    "GET", "/_sandbox/calls", query={"method": method, "bot_id": bot_id, "after": after}
                )
            )["calls"]
        )


async def wait_for_server(url: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Wait until a sandbox answers at `url` (used after starting one in another process)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while True:
            try:
                async with session.get(f"{url.rstrip('/')}/_sandbox/clock") as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"no sandbox at {url} after {timeout} s")
            await asyncio.sleep(0.1)
