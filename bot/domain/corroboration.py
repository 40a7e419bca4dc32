"""Corroboration: which earlier cases are probably about the same place as a new report.

Two reports are linked when, within the time window, their exact coordinates are within a few hundred
metres, or they name the same gazetteer area and a similar compound or building ("Building 382, Duong
Nghiep St" and "bldg 382 duong nghiep street").

Decisions worth knowing:

- Only earlier cases count: a case created after `now` (clock skew, a replayed import) is ignored, and so is
  one older than the window. The window's edges are inclusive.
- Withdrawn cases still corroborate: a captor may force a withdrawal, so the caller passes them like any
  other. The caller must leave the new report's own case out of the candidates.
- Naive datetimes are taken to be UTC, so a naive and an aware timestamp compare instead of raising.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from difflib import SequenceMatcher

from bot.domain.models import CaseSummary, Report

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)
# At most this many corroborating cases are linked to a new one (the most recent); triage counts them all.
MAX_LINKED_CASES = 20
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Words that say what kind of place it is rather than which one: dropped before names are compared.
COMMON_WORDS = frozenset(
    {
        "building",
        "bldg",
        "blg",
        "compound",
        "tower",
        "no",
        "nr",
        "number",
        "num",
        "the",
        "of",
        "at",
        "near",
        "street",
        "st",
        "str",
        "road",
        "rd",
        "avenue",
        "ave",
        "blvd",
        "boulevard",
        "block",
        "blk",
        "floor",
        "fl",
        "room",
        "rm",
        "zone",
        "area",
        "company",
        "co",
        "ltd",
        # Vietnamese "toa nha so" (building number) and Khmer "building": common in reports from Cambodia.
        "toa",
        "nha",
        "so",
        "អគារ",
    }
)

# Letters that Unicode decomposition leaves alone but a reporter typing without accents would replace.
_FOLD = str.maketrans({"đ": "d", "ø": "o", "ł": "l", "ß": "ss", "æ": "ae", "œ": "oe", "ı": "i"})

# Two words count as the same when they are this alike (a typo or a transliteration variant).
_WORD_SIMILARITY = 0.8
# Share of the shorter name's words that must be found in the other name.
_NAME_OVERLAP = 0.67


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the great-circle distance in metres between two points given in decimal degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi = phi2 - phi1
    d_lambda = math.radians(lon2 - lon1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _words(text: str) -> list[str]:
    """Split on punctuation, symbols and spaces; drop accents from Latin letters only.

    Marks stay on other scripts: Khmer, Burmese and Lao vowel signs are combining characters, and dropping
    them would merge different words.
    """
    words: list[str] = []
    current: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        if category[0] in "LN":
            current.append(char)
        elif category[0] == "M":
            if current and not current[-1].isascii():
                current.append(char)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return words


def normalise_place_name(text: str) -> tuple[str, ...]:
    """Return the words of a place name: case, accents and punctuation removed, common words dropped.

    Numbers are kept ("382", "7a"); "#382" and "No.382" both give "382".
    """
    words = []
    for word in _words(unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))):
        # "no382" -> "382": a number glued to its label.
        glued = re.fullmatch(r"(?:no|nr|bldg|blk|building|block)(\d\w*)", word)
        word = glued.group(1) if glued else word
        if word not in COMMON_WORDS:
            words.append(word)
    return tuple(words)


def _is_number(word: str) -> bool:
    # Most words are letters only: isalpha() answers those without a Python-level loop.
    return not word.isalpha() and any(char.isdigit() for char in word)


def _alike(word: str, other: str) -> bool:
    if word == other:
        return True
    # Short words (KK, Jin) must match exactly: one letter changes them completely.
    if min(len(word), len(other)) < 4:
        return False
    return SequenceMatcher(None, word, other).ratio() >= _WORD_SIMILARITY


def similar_place_names(a: str, b: str) -> bool:
    """Whether two compound or building descriptions probably name the same place.

    Building numbers must share at least one number when both descriptions have one. When both have name
    words, most of the shorter one's words must appear (allowing typos) in the other; when only one has name
    words, a shared number is required. Empty descriptions are never similar.
    """
    return _similar_words(_split_words(normalise_place_name(a)), _split_words(normalise_place_name(b)), {})


def _split_words(words: tuple[str, ...]) -> tuple[frozenset[str], list[str]]:
    """A normalised place name's numbers, and its other words sorted."""
    numbers = frozenset(word for word in words if _is_number(word))
    return numbers, sorted({word for word in words if word not in numbers})


def _similar_words(
    a: tuple[frozenset[str], list[str]],
    b: tuple[frozenset[str], list[str]],
    alike: dict[tuple[str, str], bool],
) -> bool:
    """``similar_place_names`` on split words; ``alike`` memoises word comparisons for one search."""
    (numbers_a, names_a), (numbers_b, names_b) = a, b
    if numbers_a and numbers_b and not numbers_a & numbers_b:
        return False
    if not names_a or not names_b:
        return bool(numbers_a & numbers_b)
    shorter, longer = (names_a, names_b) if len(names_a) <= len(names_b) else (names_b, names_a)

    def known(word: str, other: str) -> bool:
        key = (word, other)
        found = alike.get(key)
        if found is None:
            found = alike[key] = _alike(word, other)
        return found

    found = sum(1 for word in shorter if any(known(word, other) for other in longer))
    return found / len(shorter) >= _NAME_OVERLAP


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _near(report: Report, case: CaseSummary, radius_m: float) -> bool:
    place = report.place
    if place.latitude is None or place.longitude is None or case.latitude is None or case.longitude is None:
        return False
    return haversine_m(place.latitude, place.longitude, case.latitude, case.longitude) <= radius_m


def _same_named_place(
    report: Report,
    words: tuple[frozenset[str], list[str]],
    case: CaseSummary,
    alike: dict[tuple[str, str], bool],
) -> bool:
    """Same area and a similar place name; ``words`` is the report's place name, normalised once."""
    place = report.place
    return (
        place.area_id is not None
        and place.area_id == case.area_id
        and place.details is not None
        and case.place_details is not None
        and _similar_words(words, _split_words(normalise_place_name(case.place_details)), alike)
    )


def find_corroborating(
    report: Report,
    candidates: Iterable[CaseSummary],
    now: datetime,
    *,
    radius_m: float = 300,
    window: timedelta = timedelta(days=30),
) -> tuple[str, ...]:
    """Return the sorted, unique ids of earlier cases, within `window` of `now`, about the same place.

    Same place means within `radius_m` metres (exact coordinates on both sides), or the same gazetteer area
    with a similar compound or building name.

    Raises ValueError if `radius_m` or `window` is negative.
    """
    if radius_m < 0 or window < timedelta(0):
        raise ValueError("radius_m and window must not be negative")
    latest = _as_utc(now)
    earliest = latest - window
    # The report's name is normalised once, and each pair of words compared once, for all candidates.
    words = _split_words(normalise_place_name(report.place.details or ""))
    alike: dict[tuple[str, str], bool] = {}
    linked = {
        case.case_id
        for case in candidates
        if earliest <= _as_utc(case.created_at) <= latest
        and (_near(report, case, radius_m) or _same_named_place(report, words, case, alike))
    }
    return tuple(sorted(linked))


def newest_linked(
    linked: Iterable[str], candidates: Iterable[CaseSummary], limit: int = MAX_LINKED_CASES
) -> tuple[str, ...]:
    """The ``limit`` most recently reported of the ``linked`` case ids, sorted by id.

    In a surge of reports about one compound every report corroborates every earlier one: linking them all
    would grow each case (its links, its ticket's "Linked cases" line, Telegram's 4,096 characters) with
    the surge. The newest are the ones a coordinator follows up; the triage still counts every one.
    Raises ValueError if ``limit`` is negative.
    """
    if limit < 0:
        raise ValueError("limit must not be negative")
    wanted = set(linked)
    created = {case.case_id: _as_utc(case.created_at) for case in candidates if case.case_id in wanted}
    newest = sorted(wanted, key=lambda case_id: (created.get(case_id, _EPOCH), case_id), reverse=True)
    return tuple(sorted(newest[:limit]))
