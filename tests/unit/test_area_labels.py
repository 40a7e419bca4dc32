"""Area names on the reporter's buttons and review: local script for readers of the country's language."""

from __future__ import annotations

import pytest

from bot.domain.gazetteer import load_gazetteer
from bot.i18n import SHIPPED_LOCALES, get_translator
from handlers.intake.questions import area_label


@pytest.mark.parametrize(
    ("area_id", "locale", "expected"),
    [
        ("kh-phnom-penh", "km", "ភ្នំពេញ"),  # a Khmer reader sees the Khmer name
        ("kh-phnom-penh", "en", "Phnom Penh"),
        ("kh-phnom-penh", "zh_Hans", "Phnom Penh"),  # Chinese is not an official language of Cambodia
        ("kh-phnom-penh", "th", "Phnom Penh"),
    ],
)
def test_an_area_is_named_in_the_readers_language_where_it_is_the_countrys(area_id, locale, expected):
    area = load_gazetteer().area(area_id)
    assert area is not None
    assert area_label(get_translator(locale), area) == expected


def test_every_local_name_reaches_readers_of_its_language_and_others_keep_the_gazetteer_name():
    """Each shipped Khmer, Burmese, Lao or Thai name is shown to some locale; nobody sees a third name."""
    gazetteer = load_gazetteer()
    for area in (a for c in gazetteer.countries() for a in gazetteer.areas_in(c.code)):
        labels = {area_label(get_translator(locale), area) for locale in SHIPPED_LOCALES}
        assert labels <= {area.name, area.local_name}
        if area.local_name and area.country in {"KH", "MM", "LA", "TH"}:
            assert area.local_name in labels, area.id
