"""Typed nationalities: a country named becomes its code; other words are the reporter's free text and go
with the details (stored encrypted), never into the nationality codes (kept in clear, shown on the group's
minimal card, exported at the partner level)."""

from __future__ import annotations

from handlers.intake.draft import Step, apply_text, nationality_code, new_draft, report_of


def test_a_code_or_a_country_name_in_the_reporters_language_or_english_becomes_its_code() -> None:
    """Case does not matter; the reader's language and English are both understood."""
    assert nationality_code("vn", "en") == "VN"
    assert nationality_code("Vietnam", "en") == "VN"
    assert nationality_code("việt nam", "vi") == "VN"
    assert nationality_code("Kenya", "zh_Hans") == "KE"
    assert nationality_code("肯尼亚", "zh_Hans") == "KE"
    assert nationality_code("001", "en") is None  # a region code of CLDR, not a country
    assert nationality_code("Hmong people", "en") is None


def test_typed_words_that_name_no_country_join_the_details_and_never_the_codes() -> None:
    """ "Kenya, vn, Hmong from the hills" at the nationalities question: KE and VN are added to the
    codes, the rest is kept, whole, in the details with "From:", after what was there."""
    draft = new_draft("en")
    assert apply_text(draft, Step.DETAILS, "They took our phones.") is Step.DETAILS
    assert apply_text(draft, Step.NATIONALITIES, "Kenya, vn, Hmong from the hills, ") is Step.NATIONALITIES
    report = report_of(draft)
    assert report.nationalities == ("KE", "VN")
    assert report.details == "They took our phones.\n\nFrom: Hmong from the hills"


def test_the_details_line_is_in_the_reporters_language() -> None:
    draft = new_draft("vi")
    apply_text(draft, Step.NATIONALITIES, "người Mông")
    report = report_of(draft)
    assert report.nationalities == ()
    assert report.details is not None
    assert report.details.endswith("người Mông")
    assert not report.details.startswith("From:")
