"""Translations: locale negotiation, complete catalogs, matching placeholders, and an up-to-date template."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from bot.i18n import (
    LOCALES_DIR,
    SHIPPED_LOCALES,
    SOURCE_LOCALE,
    Translator,
    UnknownLocale,
    get_translator,
    load_catalogs,
    negotiate_locale,
)

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = LOCALES_DIR / "beacon.pot"

# printf-style "%(name)s" / "%s", str.format "{name}", and Telegram commands such as "/start".
PLACEHOLDER = re.compile(r"%\([^)]+\)[a-z]|%[a-z]|\{[^{}]*\}|(?<![\w/])/[a-z_]+")


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as po_file:
        return read_po(po_file, locale=locale)


def keys(catalog: Catalog) -> set[tuple[str | None, str]]:
    """(context, msgid) of every message, singular msgid for plurals."""
    return {
        (message.context, message.id if isinstance(message.id, str) else message.id[0])
        for message in catalog
        if message.id
    }


def test_the_three_launch_languages_are_shipped():
    """English, Vietnamese and Simplified Chinese catalogs are discovered in locales/."""
    assert {"en", "vi", "zh_Hans"} <= set(SHIPPED_LOCALES)
    assert SOURCE_LOCALE in SHIPPED_LOCALES


@pytest.mark.parametrize(
    ("language_code", "expected"),
    [
        ("en", "en"),
        ("en-GB", "en"),
        ("vi", "vi"),
        ("vi-VN", "vi"),
        ("VI_vn", "vi"),
        ("zh", "zh_Hans"),
        ("zh-hans", "zh_Hans"),
        ("zh-Hans-CN", "zh_Hans"),
        ("zh-CN", "zh_Hans"),
        ("zh_Hans", "zh_Hans"),
        ("zh-SG", "zh_Hans"),
        # No Traditional catalog yet: Simplified is more readable than the default.
        ("zh-TW", "zh_Hans"),
        ("zh-hant", "zh_Hans"),
        ("fr", "vi"),
        ("pt-br", "vi"),
        ("", "vi"),
        (None, "vi"),
        ("-", "vi"),
    ],
)
def test_telegram_language_code_is_negotiated_to_a_shipped_locale(language_code, expected):
    """A Telegram language code maps to the closest shipped catalog, else to the default."""
    assert negotiate_locale(language_code, default="vi") == expected


def test_script_decides_between_catalogs_of_the_same_language():
    """With both Chinese scripts available, the region or script subtag picks the right one."""
    available = ("en", "zh_Hans", "zh_Hant")
    assert negotiate_locale("zh-TW", "en", available) == "zh_Hant"
    assert negotiate_locale("zh-HK", "en", available) == "zh_Hant"
    assert negotiate_locale("zh-hant", "en", available) == "zh_Hant"
    assert negotiate_locale("zh-CN", "en", available) == "zh_Hans"
    assert negotiate_locale("zh", "en", available) == "zh_Hans"


@pytest.mark.parametrize("locale", SHIPPED_LOCALES)
def test_every_catalog_translates_every_template_message(locale):
    """Each shipped catalog has a reviewed (non-fuzzy, non-empty) translation for every msgid."""
    template = read_catalog(TEMPLATE)
    catalog = read_catalog(LOCALES_DIR / locale / "LC_MESSAGES" / "beacon.po", locale)
    for message in template:
        if not message.id:
            continue
        translated = catalog.get(message.id, context=message.context)
        assert translated is not None, f"{locale}: missing {message.id!r}"
        assert not translated.fuzzy, f"{locale}: fuzzy {message.id!r}"
        strings = translated.string if isinstance(translated.string, tuple) else (translated.string,)
        assert all(strings), f"{locale}: untranslated {message.id!r}"


@pytest.mark.parametrize("locale", SHIPPED_LOCALES)
def test_catalogs_hold_no_messages_the_template_dropped(locale):
    """A catalog has no stale entries: its msgids are exactly the template's."""
    catalog = read_catalog(LOCALES_DIR / locale / "LC_MESSAGES" / "beacon.po", locale)
    assert keys(catalog) == keys(read_catalog(TEMPLATE))
    assert not catalog.obsolete


@pytest.mark.parametrize("locale", SHIPPED_LOCALES)
def test_translations_keep_the_placeholders_and_commands_of_the_original(locale):
    """Placeholders like %(name)s or {name} and commands like /start survive translation unchanged."""
    catalog = read_catalog(LOCALES_DIR / locale / "LC_MESSAGES" / "beacon.po", locale)
    for message in catalog:
        if not message.id:
            continue
        ids = tuple(message.id) if isinstance(message.id, (tuple, list)) else (message.id,)
        strings = tuple(message.string) if isinstance(message.string, (tuple, list)) else (message.string,)
        expected = sorted(PLACEHOLDER.findall(ids[-1]))
        for string in strings:
            assert sorted(PLACEHOLDER.findall(string or "")) == expected, f"{locale}: {message.id!r}"


def test_template_is_up_to_date_with_the_code(tmp_path):
    """locales/beacon.pot holds exactly the strings in the code (re-run pybabel extract if not)."""
    fresh = tmp_path / "beacon.pot"
    CommandLineInterface().run(
        [
            "pybabel",
            "--quiet",
            "extract",
            "--mapping-file",
            str(REPO / "babel.cfg"),
            "--add-comments=TRANSLATORS:",
            "--output-file",
            str(fresh),
            str(REPO),
        ]
    )
    assert keys(read_catalog(fresh)) == keys(read_catalog(TEMPLATE)), (
        "locales/beacon.pot is stale: run the extract and update commands in locales/README.md"
    )


def test_catalogs_compile_in_memory_into_translators():
    """Every shipped catalog compiles at start-up into a Translator for its locale."""
    translators = load_catalogs()
    assert set(translators) == set(SHIPPED_LOCALES)
    assert all(isinstance(translator, Translator) for translator in translators.values())
    assert get_translator("vi").locale == "vi"


def test_translator_translates_and_falls_back_to_the_original_text():
    """Known text is translated; unknown text comes back unchanged."""
    apology = "Something went wrong on our side. Please try again."
    assert get_translator("en").gettext(apology) == apology
    assert get_translator("vi").gettext(apology) != apology
    assert get_translator("zh_Hans").gettext(apology) != apology
    assert get_translator("vi").gettext("Not in any catalog") == "Not in any catalog"


def test_translator_supports_context_and_plural_forms():
    """pgettext looks up by context; ngettext picks the plural form by count."""
    assert get_translator("vi").pgettext("command menu", "Begin a report") == "Bắt đầu một báo cáo"
    assert get_translator("zh_Hans").pgettext("command menu", "Begin a report") == "开始报告"
    assert get_translator("en").ngettext("one report", "%(n)d reports", 1) == "one report"
    assert get_translator("en").ngettext("one report", "%(n)d reports", 3) == "%(n)d reports"


def test_unknown_locale_is_refused():
    """Asking for a locale with no catalog raises instead of silently answering in English."""
    with pytest.raises(UnknownLocale):
        get_translator("fr")
