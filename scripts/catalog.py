"""Translator's helper: dump a catalog's untranslated entries as JSON, fill them back, set the header.

    python scripts/catalog.py dump LOCALE [--all] > todo.json
    python scripts/catalog.py fill LOCALE todo.json
    python scripts/catalog.py header LOCALE --produced "..." --review "..."
    python scripts/catalog.py status        # the README's table of languages and review status

``dump`` writes a JSON list of entries: ``key`` (context + EOT + msgid, as gettext does), ``msgid``,
``plural`` (the English plural, or null), ``nplurals`` (the locale's plural-form count), ``comments``
(notes for translators) and ``msgstr`` (a string, or a list of ``nplurals`` strings for plurals).
Fill in ``msgstr`` and give the file to ``fill``: it writes the catalog back with babel, unwrapped and
sorted by file, exactly like ``pybabel update --no-wrap`` does, so diffs stay small.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po, write_po

LOCALES = Path(__file__).resolve().parent.parent / "locales"
EOT = "\x04"
HEADER_FIELDS = ("Produced-By", "Review-Status")


def _path(locale: str) -> Path:
    return LOCALES / locale / "LC_MESSAGES" / "beacon.po"


def _read(locale: str) -> Catalog:
    with _path(locale).open("rb") as handle:
        return read_po(handle, locale=locale)


def _write(locale: str, catalog: Catalog) -> None:
    with _path(locale).open("wb") as handle:
        write_po(handle, catalog, width=0, sort_by_file=True, ignore_obsolete=True)


def _key(message: Message) -> str:
    msgid = message.id if isinstance(message.id, str) else message.id[0]
    return f"{message.context}{EOT}{msgid}" if message.context else msgid


def _translated(message: Message) -> bool:
    strings = message.string if isinstance(message.string, (tuple, list)) else (message.string,)
    return bool(strings) and all(strings) and not message.fuzzy


def dump(locale: str, everything: bool) -> None:
    catalog = _read(locale)
    entries = []
    for message in catalog:
        if not message.id or (_translated(message) and not everything):
            continue
        plural = not isinstance(message.id, str)
        entries.append(
            {
                "key": _key(message),
                "context": message.context,
                "msgid": message.id[0] if plural else message.id,
                "plural": message.id[1] if plural else None,
                "nplurals": catalog.num_plurals,
                "comments": list(message.auto_comments),
                "msgstr": list(message.string) if plural else message.string,
            }
        )
    json.dump(entries, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


def fill(locale: str, source: Path) -> None:
    catalog = _read(locale)
    by_key = {_key(message): message for message in catalog if message.id}
    entries = json.loads(source.read_text(encoding="utf-8"))
    unknown = [entry["key"] for entry in entries if entry["key"] not in by_key]
    if unknown:
        sys.exit(f"not in the {locale} catalog (re-run dump): {unknown[:3]}")
    for entry in entries:
        message = by_key[entry["key"]]
        string = entry["msgstr"]
        if isinstance(message.id, str):
            if not isinstance(string, str):
                sys.exit(f"{entry['key']!r}: expected one string")
            message.string = string
        else:
            if not isinstance(string, list) or len(string) != catalog.num_plurals:
                sys.exit(f"{entry['key']!r}: expected a list of {catalog.num_plurals} strings")
            message.string = tuple(string)
        message.flags.discard("fuzzy")
    _write(locale, catalog)
    print(f"{locale}: filled {len(entries)} entries")


def header(locale: str, produced: str, review: str) -> None:
    catalog = _read(locale)
    from babel.core import Locale

    name = Locale.parse(locale)
    lines = [
        f"{name.english_name} ({name.display_name}) translations for Beacon.",
        "Copyright (C) 2026 Beacon contributors",
        "This file is distributed under the same license as the Beacon project.",
        "",
        f"Produced-By: {produced}",
        f"Review-Status: {review}",
    ]
    catalog.header_comment = "\n".join(f"# {line}".rstrip() for line in lines)
    catalog.project = "Beacon"
    catalog.version = "0.1.0"
    catalog.last_translator = "Beacon contributors"
    catalog.language_team = (
        f"{name.english_name} (unreviewed)" if review.startswith("not") else name.english_name
    )
    catalog.msgid_bugs_address = "see README.md"
    _write(locale, catalog)


def header_fields(locale: str) -> dict[str, str]:
    """The Produced-By and Review-Status lines of a catalog's header comment."""
    fields: dict[str, str] = {}
    for line in _read(locale).header_comment.splitlines():
        name, sep, value = line.removeprefix("#").strip().partition(":")
        if sep and name in HEADER_FIELDS:
            fields[name] = value.strip()
    return fields


def status_table() -> str:
    """The README's table of languages: name, locale, direction, how it was made, review status."""
    sys.path.insert(0, str(LOCALES.parent))
    from babel.core import Locale

    from bot.i18n import SHIPPED_LOCALES, native_name, ordered_locales, text_direction

    rows = [
        "| Language | Locale | Script direction | Produced by | Review |",
        "|---|---|---|---|---|",
    ]
    for locale in ordered_locales(SHIPPED_LOCALES):
        fields = header_fields(locale)
        english = Locale.parse(locale).english_name
        rows.append(
            f"| {english} — {native_name(locale)} | `{locale}` | {text_direction(locale)} | "
            f"{fields.get('Produced-By', '?')} | {fields.get('Review-Status', '?')} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_dump = sub.add_parser("dump")
    p_dump.add_argument("locale")
    p_dump.add_argument("--all", action="store_true", help="include entries already translated")
    p_fill = sub.add_parser("fill")
    p_fill.add_argument("locale")
    p_fill.add_argument("source", type=Path)
    p_header = sub.add_parser("header")
    p_header.add_argument("locale")
    p_header.add_argument("--produced", required=True)
    p_header.add_argument("--review", required=True)
    sub.add_parser("status", help="print the README's table of languages and their review status")
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.locale, args.all)
    elif args.command == "fill":
        fill(args.locale, args.source)
    elif args.command == "status":
        print(status_table())
    else:
        header(args.locale, args.produced, args.review)


if __name__ == "__main__":
    main()
