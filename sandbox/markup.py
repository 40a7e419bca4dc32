"""Telegram's formatting: parse `parse_mode` text (HTML, MarkdownV2, Markdown) into plain text and entities.

Telegram rejects malformed markup with "can't parse entities"; a bot that puts a reporter's words into HTML
without escaping them must fail here exactly as it would on real Telegram.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from sandbox.errors import ApiError

Entity = dict[str, Any]


def utf16_len(text: str) -> int:
    """Return the length of `text` in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _parse_error(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: can't parse entities: {detail}")


class _Builder:
    """Accumulates plain text and entities with UTF-16 offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.entities: list[Entity] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += utf16_len(text)

    def close(self, entity: Entity, start: int) -> None:
        length = self.length - start
        if length > 0:
            entity["offset"] = start
            entity["length"] = length
            self.entities.append(entity)

    def result(self) -> tuple[str, list[Entity]]:
        return "".join(self.parts), sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))


_HTML_SIMPLE = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}


class _TelegramHTML(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.out = _Builder()
        self.stack: list[tuple[str, Entity | None, int]] = []
        self._line_starts = [0]
        for i, ch in enumerate(source):
            if ch == "\n":
                self._line_starts.append(i + 1)

    def _byte_offset(self) -> int:
        line, col = self.getpos()
        index = self._line_starts[line - 1] + col
        return len(self.source[:index].encode("utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        entity: Entity | None
        if tag in _HTML_SIMPLE:
            entity = {"type": _HTML_SIMPLE[tag]}
            if tag == "blockquote" and "expandable" in attributes:
                entity["type"] = "expandable_blockquote"
            if tag == "tg-emoji":
                entity["custom_emoji_id"] = attributes.get("emoji-id") or ""
        elif tag == "span":
            if attributes.get("class") != "tg-spoiler":
                raise _parse_error(f'Unsupported start tag "span" at byte offset {self._byte_offset()}')
            entity = {"type": "spoiler"}
        elif tag == "a":
            href = attributes.get("href") or ""
            if href.startswith("tg://user?id="):
                user_id = href.split("=", 1)[1]
                entity = {"type": "text_mention", "user": {"id": int(user_id) if user_id.isdigit() else 0}}
            else:
                entity = {"type": "text_link", "url": href}
        else:
            raise _parse_error(f'Unsupported start tag "{tag}" at byte offset {self._byte_offset()}')
        if tag == "code" and self.stack and self.stack[-1][0] == "pre":
            # <pre><code class="language-x"> sets the language of the enclosing pre block.
            pre_entity = self.stack[-1][1]
            cls = attributes.get("class") or ""
            if pre_entity is not None and cls.startswith("language-"):
                pre_entity["language"] = cls.removeprefix("language-")
            entity = None
        self.stack.append((tag, entity, self.out.length))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack:
            raise _parse_error(f"Unexpected end tag at byte offset {self._byte_offset()}")
        open_tag, entity, start = self.stack.pop()
        if open_tag != tag:
            raise _parse_error(
                f'Unmatched end tag at byte offset {self._byte_offset()}, expected "</{open_tag}>", '
                f'found "</{tag}>"'
            )
        if entity is not None:
            self.out.close(entity, start)

    def handle_data(self, data: str) -> None:
        self.out.add(data)

    def finish(self) -> tuple[str, list[Entity]]:
        self.close()
        if self.stack:
            raise _parse_error(f'Can\'t find end tag corresponding to start tag "{self.stack[-1][0]}"')
        return self.out.result()


def parse_html(source: str) -> tuple[str, list[Entity]]:
    """Parse Telegram-flavoured HTML; raise ApiError 400 on markup Telegram would refuse."""
    parser = _TelegramHTML(source)
    parser.feed(source)
    return parser.finish()


_MD2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MD2_MARKERS = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler"}


def parse_markdown_v2(source: str) -> tuple[str, list[Entity]]:
    """Parse MarkdownV2; unescaped reserved characters and unclosed entities are errors, as on Telegram."""
    out = _Builder()
    stack: list[tuple[str, int, int]] = []  # marker, text offset, byte offset
    i = 0
    n = len(source)

    def byte_at(index: int) -> int:
        return len(source[:index].encode("utf-8"))

    while i < n:
        ch = source[i]
        if ch == "\\":
            if i + 1 < n and ord(source[i + 1]) < 127:
                out.add(source[i + 1])
                i += 2
                continue
            raise _parse_error(f"Character '\\' is reserved and must be escaped at byte offset {byte_at(i)}")
        if source.startswith("```", i):
            end = source.find("```", i + 3)
            if end < 0:
                raise _parse_error(f"Can't find end of Pre entity at byte offset {byte_at(i)}")
            body = source[i + 3 : end]
            language = ""
            if "\n" in body:
                first, rest = body.split("\n", 1)
                if first and " " not in first:
                    language, body = first, rest
            start = out.length
            out.add(_unescape_code(body))
            entity: Entity = {"type": "pre"}
            if language:
                entity["language"] = language
            out.close(entity, start)
            i = end + 3
            continue
        if ch == "`":
            end = source.find("`", i + 1)
            if end < 0:
                raise _parse_error(f"Can't find end of Code entity at byte offset {byte_at(i)}")
            start = out.length
            out.add(_unescape_code(source[i + 1 : end]))
            out.close({"type": "code"}, start)
            i = end + 1
            continue
        if ch == "[":
            stack.append(("[", out.length, byte_at(i)))
            i += 1
            continue
        if ch == "]":
            if not stack or stack[-1][0] != "[":
                raise _parse_error(
                    f"Character ']' is reserved and must be escaped at byte offset {byte_at(i)}"
                )
            if not source.startswith("(", i + 1):
                raise _parse_error(
                    f"Character ']' is reserved and must be escaped at byte offset {byte_at(i)}"
                )
            end = source.find(")", i + 2)
            if end < 0:
                raise _parse_error(f"Can't find end of a URL at byte offset {byte_at(i + 1)}")
            _, start, _ = stack.pop()
            out.close({"type": "text_link", "url": source[i + 2 : end].replace("\\)", ")")}, start)
            i = end + 1
            continue
        marker = "__" if source.startswith("__", i) else "||" if source.startswith("||", i) else ch
        if marker in _MD2_MARKERS:
            if stack and stack[-1][0] == marker:
                _, start, _ = stack.pop()
                out.close({"type": _MD2_MARKERS[marker]}, start)
            else:
                stack.append((marker, out.length, byte_at(i)))
            i += len(marker)
            continue
        if ch == ">" and (i == 0 or source[i - 1] == "\n"):
            end = source.find("\n", i)
            end = n if end < 0 else end
            start = out.length
            inner_text, inner_entities = parse_markdown_v2(source[i + 1 : end])
            for e in inner_entities:
                e["offset"] += start
                out.entities.append(e)
            out.add(inner_text)
            out.close({"type": "blockquote"}, start)
            i = end
            continue
        if ch in _MD2_RESERVED:
            raise _parse_error(f"Character '{ch}' is reserved and must be escaped with the preceding '\\'")
        out.add(ch)
        i += 1
    if stack:
        marker, _, byte = stack[-1]
        name = {"[": "TextUrl"}.get(marker, _MD2_MARKERS.get(marker, marker).title())
        raise _parse_error(f"Can't find end of {name} entity at byte offset {byte}")
    return out.result()


def _unescape_code(body: str) -> str:
    return body.replace("\\`", "`").replace("\\\\", "\\")


def parse_markdown_legacy(source: str) -> tuple[str, list[Entity]]:
    """Parse the legacy Markdown mode: *bold*, _italic_, `code`, ```pre```, [text](url)."""
    out = _Builder()
    i = 0
    n = len(source)
    simple = {"*": "bold", "_": "italic", "`": "code"}
    while i < n:
        ch = source[i]
        if source.startswith("```", i):
            end = source.find("```", i + 3)
            if end < 0:
                raise _parse_error(f"Can't find end of the entity starting at byte offset {i}")
            start = out.length
            out.add(source[i + 3 : end])
            out.close({"type": "pre"}, start)
            i = end + 3
        elif ch in simple:
            end = source.find(ch, i + 1)
            if end < 0:
                offset = len(source[:i].encode("utf-8"))
                raise _parse_error(f"Can't find end of the entity starting at byte offset {offset}")
            start = out.length
            out.add(source[i + 1 : end])
            out.close({"type": simple[ch]}, start)
            i = end + 1
        elif ch == "[":
            close = source.find("](", i)
            end = source.find(")", close + 2) if close >= 0 else -1
            if close < 0 or end < 0:
                out.add(ch)
                i += 1
                continue
            start = out.length
            out.add(source[i + 1 : close])
            out.close({"type": "text_link", "url": source[close + 2 : end]}, start)
            i = end + 1
        else:
            out.add(ch)
            i += 1
    return out.result()


def parse_text(text: str, parse_mode: str | None) -> tuple[str, list[Entity]]:
    """Turn `text` sent with `parse_mode` into (plain text, entities); ApiError 400 on bad markup."""
    if not parse_mode:
        return text, []
    mode = parse_mode.lower()
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown_legacy(text)
    raise ApiError(400, f"Bad Request: unsupported parse_mode: {parse_mode}")


def command_entities(text: str) -> list[Entity]:
    """Entities a Telegram client adds to a typed message: a bot_command at the start."""
    if not text.startswith("/"):
        return []
    word = text.split(maxsplit=1)[0] if text.strip() else text
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(word)}]
