"""Translations: compile the shipped gettext catalogs in memory and hand out one Translator per locale.

Catalogs live in ``locales/<locale>/LC_MESSAGES/beacon.po``; compiled ``.mo`` files are never committed,
so the ``.po`` files are compiled with babel into memory on first use and cached for the process.
"""

from __future__ import annotations

import functools
import gettext
import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType

from babel.core import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po

__all__ = [
    "DOMAIN",
    "LANGUAGE_ORDER",
    "LOCALES_DIR",
    "SHIPPED_LOCALES",
    "SOURCE_LOCALE",
    "CatalogError",
    "Translator",
    "UnknownLocale",
    "get_translator",
    "load_catalogs",
    "native_name",
    "negotiate_locale",
    "ordered_locales",
    "text_direction",
]

DOMAIN = "beacon"
LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
# The language the msgids are written in; every other catalog falls back to it for a missing entry.
SOURCE_LOCALE = "en"

# The order the language picker shows the shipped languages in: the languages of people held in the
# compounds and of their families first, region by region (any other catalog follows, alphabetically).
LANGUAGE_ORDER: tuple[str, ...] = (
    "en", "km", "zh_Hans", "zh_Hant", "vi", "th", "my", "lo", "id", "ms", "fil",
    "hi", "bn", "ne", "si", "ta", "ur", "ko", "ja", "sw", "am",
)  # fmt: skip

# Names people look for in the picker where CLDR's own name is ambiguous on its own.
_NATIVE_NAMES = {"id": "Bahasa Indonesia", "ms": "Bahasa Melayu"}

# Old or alternative codes a Telegram client may send for a language Beacon ships under another code.
_LANGUAGE_ALIASES = {"tl": "fil", "in": "id", "zsm": "ms", "mya": "my", "bur": "my", "npi": "ne"}

# Telegram reports the client's language as an IETF tag ("zh-hans", "pt-br"); a bare "zh" or a mainland
# region means Simplified script, while these regions conventionally write Traditional.
_TRADITIONAL_CHINESE_REGIONS = frozenset({"tw", "hk", "mo"})


class CatalogError(Exception):
    """A shipped catalog is missing or cannot be parsed."""


class UnknownLocale(LookupError):
    """No catalog is shipped for the requested locale."""


def _discover_locales(locales_dir: Path) -> tuple[str, ...]:
    """Return the locales that have a ``beacon.po`` catalog, sorted."""
    if not locales_dir.is_dir():
        return ()
    return tuple(
        sorted(
            entry.name
            for entry in locales_dir.iterdir()
            if (entry / "LC_MESSAGES" / f"{DOMAIN}.po").is_file()
        )
    )


SHIPPED_LOCALES: tuple[str, ...] = _discover_locales(LOCALES_DIR)


class Translator:
    """Translate user-facing text into one locale; wraps a compiled gettext catalog."""

    __slots__ = ("_translations", "locale")

    def __init__(self, locale: str, translations: gettext.NullTranslations) -> None:
        self.locale = locale
        self._translations = translations

    def __repr__(self) -> str:
        return f"Translator({self.locale!r})"

    def gettext(self, message: str) -> str:
        """Return the translation of ``message``, or ``message`` itself if it has none."""
        return self._translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """Return the translation of the plural form that fits ``n`` in this locale."""
        return self._translations.ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        """Return the translation of ``message`` in ``context`` (for identical words that differ)."""
        return self._translations.pgettext(context, message)

    def npgettext(self, context: str, singular: str, plural: str, n: int) -> str:
        """Return the plural-aware translation of ``singular``/``plural`` in ``context``."""
        return self._translations.npgettext(context, singular, plural, n)


def _compile(po_path: Path, locale: str) -> gettext.GNUTranslations:
    """Compile one ``.po`` file into an in-memory gettext catalog."""
    try:
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=locale, domain=DOMAIN, abort_invalid=True)
    except (OSError, PoFileError, ValueError, UnknownLocaleError) as exc:
        raise CatalogError(f"cannot read catalog {po_path}: {exc}") from exc
    buffer = io.BytesIO()
    # Fuzzy entries are machine guesses waiting for review: never show them to a reporter.
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def _compile_all(locales_dir: Path, locales: Iterable[str]) -> dict[str, Translator]:
    """Compile every catalog, chaining each to the source locale for entries it lacks."""
    compiled = {
        locale: _compile(locales_dir / locale / "LC_MESSAGES" / f"{DOMAIN}.po", locale) for locale in locales
    }
    source = compiled.get(SOURCE_LOCALE)
    if source is not None:
        for locale, translations in compiled.items():
            if locale != SOURCE_LOCALE:
                translations.add_fallback(source)
    return {locale: Translator(locale, translations) for locale, translations in compiled.items()}


@functools.cache
def load_catalogs() -> Mapping[str, Translator]:
    """Compile every shipped catalog once and return them by locale.

    Call it at start-up so that a broken catalog stops the bot at once rather than at the first message.
    Raises ``CatalogError`` if a catalog cannot be read or parsed.
    """
    if SOURCE_LOCALE not in SHIPPED_LOCALES:
        raise CatalogError(f"the source catalog {SOURCE_LOCALE!r} is missing from {LOCALES_DIR}")
    return MappingProxyType(_compile_all(LOCALES_DIR, SHIPPED_LOCALES))


def get_translator(locale: str) -> Translator:
    """Return the translator for a shipped ``locale`` (e.g. ``"zh_Hans"``).

    Raises ``UnknownLocale`` if no catalog is shipped for it; use ``negotiate_locale`` first.
    """
    try:
        return load_catalogs()[locale]
    except KeyError:
        raise UnknownLocale(locale) from None


def negotiate_locale(
    language_code: str | None, default: str, available: Iterable[str] = SHIPPED_LOCALES
) -> str:
    """Pick the shipped locale that best fits a Telegram ``language_code`` such as ``"vi-VN"``.

    A tag's language must match; when several catalogs share it, the script decides ("zh-hans",
    "zh-CN" and a bare "zh" mean Simplified; "zh-TW" Traditional). A language with a catalog in
    another script still gets that catalog, since it is more readable than ``default``.
    Returns ``default`` when the code is missing or no catalog has that language.
    """
    if not language_code:
        return default
    subtags = language_code.strip().replace("_", "-").lower().split("-")
    language = _LANGUAGE_ALIASES.get(subtags[0], subtags[0])
    script = next((tag for tag in subtags[1:] if len(tag) == 4 and tag.isalpha()), None)
    region = next((tag for tag in subtags[1:] if len(tag) == 2 and tag.isalpha()), None)
    if script is None and language == "zh":
        script = "hant" if region in _TRADITIONAL_CHINESE_REGIONS else "hans"

    candidates = [locale for locale in available if _parse(locale)[0] == language]
    if not candidates:
        return default
    for locale in candidates:
        if _parse(locale)[1] == script:
            return locale
    for locale in candidates:
        if _parse(locale)[1] is None:
            return locale
    return candidates[0]


def ordered_locales(available: Iterable[str] = SHIPPED_LOCALES) -> tuple[str, ...]:
    """The shipped locales in the picker's order (``LANGUAGE_ORDER``, then any other alphabetically)."""
    known = [code for code in LANGUAGE_ORDER if code in set(available)]
    return (*known, *sorted(set(available) - set(known)))


def native_name(locale: str) -> str:
    """The language's name in its own script, e.g. "ខ្មែរ" for ``km``, "中文 (繁體)" for ``zh_Hant``."""
    if locale in _NATIVE_NAMES:
        return _NATIVE_NAMES[locale]
    try:
        name = Locale.parse(locale).display_name
    except (ValueError, UnknownLocaleError):
        return locale
    return name[:1].upper() + name[1:] if name else locale


def text_direction(locale: str) -> str:
    """``"rtl"`` for a right-to-left script (Urdu), else ``"ltr"``."""
    try:
        return "rtl" if Locale.parse(locale).text_direction == "rtl" else "ltr"
    except (ValueError, UnknownLocaleError):
        return "ltr"


@functools.lru_cache(maxsize=256)
def _parse(locale: str) -> tuple[str, str | None]:
    """Split a catalog name like ``"zh_Hans"`` into lower-case language and script."""
    try:
        parsed = Locale.parse(locale)
    except (ValueError, UnknownLocaleError):
        return locale.lower(), None
    return parsed.language.lower(), parsed.script.lower() if parsed.script else None
