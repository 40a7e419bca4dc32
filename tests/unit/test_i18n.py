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
    native_name,
    negotiate_locale,
    ordered_locales,
    text_direction,
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


TWENTY_ONE = [
    "en",
    "km",
    "zh_Hans",
    "zh_Hant",
    "vi",
    "th",
    "my",
    "lo",
    "id",
    "ms",
    "fil",
    "hi",
    "bn",
    "ne",
    "si",
    "ta",
    "ur",
    "ko",
    "ja",
    "sw",
    "am",
]


def test_the_twenty_one_languages_are_shipped():
    """Every language of the issue has a catalog, discovered in locales/, and the picker lists them all."""
    assert set(SHIPPED_LOCALES) == set(TWENTY_ONE)
    assert SOURCE_LOCALE in SHIPPED_LOCALES
    assert list(ordered_locales()) == TWENTY_ONE


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
        ("zh-TW", "zh_Hant"),
        ("zh-HK", "zh_Hant"),
        ("zh-hant", "zh_Hant"),
        ("zh-Hant-TW", "zh_Hant"),
        ("tl", "fil"),
        ("fil", "fil"),
        ("in", "id"),
        ("id-ID", "id"),
        ("ms-MY", "ms"),
        ("my", "my"),
        ("km-KH", "km"),
        ("ur-PK", "ur"),
        ("am-ET", "am"),
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


# --- scripts, headers, plural forms, checkers ----------------------------------------------------------

# The script each catalog must be written in: (name, ranges of code points). Latin catalogs are checked
# for English left behind instead (below).
SCRIPTS: dict[str, tuple[str, tuple[tuple[int, int], ...]]] = {
    "km": ("Khmer", ((0x1780, 0x17FF), (0x19E0, 0x19FF))),
    "th": ("Thai", ((0x0E00, 0x0E7F),)),
    "lo": ("Lao", ((0x0E80, 0x0EFF),)),
    "my": ("Myanmar", ((0x1000, 0x109F), (0xAA60, 0xAA7F))),
    "hi": ("Devanagari", ((0x0900, 0x097F),)),
    "ne": ("Devanagari", ((0x0900, 0x097F),)),
    "bn": ("Bengali", ((0x0980, 0x09FF),)),
    "si": ("Sinhala", ((0x0D80, 0x0DFF),)),
    "ta": ("Tamil", ((0x0B80, 0x0BFF),)),
    "ur": ("Arabic", ((0x0600, 0x06FF), (0x0750, 0x077F), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF))),
    "ko": ("Hangul", ((0xAC00, 0xD7AF), (0x1100, 0x11FF), (0x3130, 0x318F))),
    "ja": ("Japanese", ((0x3040, 0x309F), (0x30A0, 0x30FF), (0x4E00, 0x9FFF))),
    "zh_Hans": ("Han", ((0x4E00, 0x9FFF),)),
    "zh_Hant": ("Han", ((0x4E00, 0x9FFF),)),
    "am": ("Ethiopic", ((0x1200, 0x137F), (0x1380, 0x139F))),
}
LATIN = ("vi", "id", "ms", "fil", "sw")
# What may stay in Latin letters inside a translation: placeholders, commands, the tokens people type.
KEEP_LATIN = re.compile(
    r"%\([^)]+\)[a-z]|\{[^{}]*\}|/[a-z_]+|\b[A-Z][A-Z0-9_|]+\b|\b[a-z_]+=\S*|https?://\S+|"
    r"\b(?:Beacon|Telegram|age|csv|jsonl|xlsx|geojson|full|partner|public|since|until|status|priority|"
    r"country|area|indicator|on|off|coordinator|analyst|admin|duplicate|text|reason|tag|ID|USER_ID|ROLE|"
    r"OTHER|P[1-4])\b"
)


def _in(char: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(low <= ord(char) <= high for low, high in ranges)


def _strings(message) -> tuple[str, ...]:
    return tuple(message.string) if isinstance(message.string, (tuple, list)) else (message.string,)


@pytest.mark.parametrize("locale", sorted(SCRIPTS))
def test_each_catalog_is_written_in_its_script(locale):
    """Every translation with letters in it is in the locale's script (Khmer for km, Ethiopic for am ...),
    with no run of English words left behind."""
    script, ranges = SCRIPTS[locale]
    catalog = read_catalog(LOCALES_DIR / locale / "LC_MESSAGES" / "beacon.po", locale)
    for message in catalog:
        if not message.id:
            continue
        for string in _strings(message):
            rest = KEEP_LATIN.sub(" ", string or "")
            letters = [c for c in rest if c.isalpha()]
            if not letters:
                continue
            native = sum(_in(c, ranges) for c in letters)
            assert native, f"{locale}: no {script} script in {string!r}"
            assert not re.search(r"[A-Za-z]{3,}(?:\s+[A-Za-z]{3,}){2,}", rest), (
                f"{locale}: English words left in {string!r}"
            )


@pytest.mark.parametrize("locale", LATIN)
def test_latin_catalogs_leave_no_sentence_in_english(locale):
    """A translation identical to its English original is allowed only for a name or a token."""
    catalog = read_catalog(LOCALES_DIR / locale / "LC_MESSAGES" / "beacon.po", locale)
    for message in catalog:
        if not message.id:
            continue
        ids = (message.id,) if isinstance(message.id, str) else tuple(message.id)
        for original, string in zip(ids, _strings(message), strict=False):
            words = re.findall(r"[A-Za-z]{3,}", KEEP_LATIN.sub(" ", original))
            if len(words) >= 3:
                assert string != original, f"{locale}: left in English: {original!r}"


def test_vietnamese_uses_its_diacritics_and_traditional_chinese_its_characters():
    """Catch a catalog written without Vietnamese tone marks, or Traditional written in Simplified."""
    vi = " ".join(
        s for m in read_catalog(LOCALES_DIR / "vi/LC_MESSAGES/beacon.po", "vi") for s in _strings(m) if s
    )
    assert sum(vi.count(c) for c in "ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ") > 100
    hant = " ".join(
        s
        for m in read_catalog(LOCALES_DIR / "zh_Hant/LC_MESSAGES/beacon.po", "zh_Hant")
        for s in _strings(m)
        if s
    )
    hans = " ".join(
        s
        for m in read_catalog(LOCALES_DIR / "zh_Hans/LC_MESSAGES/beacon.po", "zh_Hans")
        for s in _strings(m)
        if s
    )
    simplified_only = "这们说时为会个报护码删问题语处发"
    traditional_only = "這們說時為會個報護碼刪問題語處發"
    assert sum(hant.count(c) for c in simplified_only) == 0
    assert sum(hant.count(c) for c in traditional_only) > 20
    assert sum(hans.count(c) for c in traditional_only) == 0


@pytest.mark.parametrize("locale", SHIPPED_LOCALES)
def test_catalog_header_records_how_it_was_made_and_its_review(locale):
    """Deployers see which languages a native speaker has reviewed (README table from these headers)."""
    catalog = read_catalog(LOCALES_DIR / locale / "LC_MESSAGES" / "beacon.po", locale)
    fields = dict(
        line.removeprefix("#").strip().split(":", 1)
        for line in catalog.header_comment.splitlines()
        if line.removeprefix("#").strip().startswith(("Produced-By:", "Review-Status:"))
    )
    assert fields.get("Produced-By", "").strip(), f"{locale}: no Produced-By line in the header"
    review = fields.get("Review-Status", "").strip()
    assert review in {"source text", "not reviewed by a native speaker"} or review.startswith(
        "reviewed by "
    ), f"{locale}: Review-Status must be 'not reviewed by a native speaker' or 'reviewed by NAME, DATE'"


def test_readme_shows_the_languages_and_their_review_status():
    """README.md holds the table `python scripts/catalog.py status` prints (regenerate it if not)."""
    import subprocess
    import sys

    table = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "catalog.py"), "status"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert table in (REPO / "README.md").read_text(encoding="utf-8"), (
        "README.md's table of languages is stale: paste the output of `python scripts/catalog.py status`"
    )


@pytest.mark.parametrize("locale", SHIPPED_LOCALES)
def test_plural_forms_come_from_cldr_and_pass_babels_checkers(locale):
    """The Plural-Forms header is CLDR's (via babel), every plural entry has that many forms, and babel's
    checkers (python-format placeholders, plural count) find nothing."""
    from babel.messages.plurals import get_plural

    catalog = read_catalog(LOCALES_DIR / locale / "LC_MESSAGES" / "beacon.po", locale)
    expected = get_plural(locale)
    assert catalog.num_plurals == expected.num_plurals
    assert catalog.plural_expr.replace(" ", "") == expected.plural_expr.replace(" ", "")
    for message in catalog:
        if message.id and not isinstance(message.id, str):
            assert len(_strings(message)) == expected.num_plurals, f"{locale}: {message.id!r}"
    problems = [(message.id, [str(e) for e in errors]) for message, errors in catalog.check() if errors]
    assert not problems, f"{locale}: {problems[:3]}"


def test_every_language_is_named_in_its_own_script_and_urdu_reads_right_to_left():
    for locale in SHIPPED_LOCALES:
        name = native_name(locale)
        assert name
        assert name != locale
        if locale in SCRIPTS:
            assert any(_in(c, SCRIPTS[locale][1]) for c in name), f"{locale}: {name!r}"
    assert native_name("id") == "Bahasa Indonesia"
    assert text_direction("ur") == "rtl"
    assert {text_direction(locale) for locale in SHIPPED_LOCALES if locale != "ur"} == {"ltr"}
