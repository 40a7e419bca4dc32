"""Corroboration: earlier reports about the same place, by distance or by area and building name."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.corroboration import (
    EARTH_RADIUS_M,
    MAX_LINKED_CASES,
    find_corroborating,
    haversine_m,
    newest_linked,
    normalise_place_name,
    similar_place_names,
)
from bot.domain.models import CaseSummary, Place, Report

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LAT, LON = 11.5900, 104.8650  # Sen Sok, Phnom Penh
METRES_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180


def north_of(metres: float) -> float:
    """The latitude `metres` due north of the test point."""
    return LAT + metres / METRES_PER_DEGREE


def at_point(**place: object) -> Report:
    return Report(place=Place(latitude=LAT, longitude=LON, **place))


def case(case_id: str, days_ago: float = 1, **fields: object) -> CaseSummary:
    return CaseSummary(case_id=case_id, created_at=NOW - timedelta(days=days_ago), **fields)


def named(details: str, area_id: str = "kh-sen-sok") -> Report:
    return Report(place=Place(country="KH", area_id=area_id, details=details))


def test_a_case_299_metres_away_is_linked():
    """An earlier case just inside 300 m of the report's coordinates corroborates it."""
    near = case("c1", latitude=north_of(299), longitude=LON)
    assert find_corroborating(at_point(), [near], NOW) == ("c1",)


def test_a_case_301_metres_away_is_not_linked():
    """A case just beyond 300 m does not corroborate by distance."""
    far = case("c1", latitude=north_of(301), longitude=LON)
    assert find_corroborating(at_point(), [far], NOW) == ()


def test_the_radius_can_be_widened():
    """A caller may widen the radius, for instance for reports with rough locations."""
    far = case("c1", latitude=north_of(900), longitude=LON)
    assert find_corroborating(at_point(), [far], NOW, radius_m=1000) == ("c1",)


def test_a_case_without_coordinates_is_not_linked_by_distance():
    """Distance needs exact coordinates on both sides."""
    assert find_corroborating(at_point(), [case("c1", area_id="kh-sen-sok")], NOW) == ()
    assert find_corroborating(named("Building 382"), [case("c2", latitude=LAT, longitude=LON)], NOW) == ()


def test_same_area_and_similar_building_name_is_linked():
    """The same gazetteer area with a similar building description corroborates without coordinates."""
    earlier = case("c1", area_id="kh-sen-sok", place_details="bldg 382 duong nghiep street")
    assert find_corroborating(named("Building 382, Duong Nghiep St"), [earlier], NOW) == ("c1",)


def test_same_area_but_different_building_number_is_not_linked():
    """Building numbers must match when both descriptions have one."""
    earlier = case("c1", area_id="kh-sen-sok", place_details="Building 383, Duong Nghiep St")
    assert find_corroborating(named("Building 382, Duong Nghiep St"), [earlier], NOW) == ()


def test_similar_name_in_another_area_is_not_linked():
    """A similar name in a different gazetteer area is a different place."""
    earlier = case("c1", area_id="kh-poipet", place_details="Building 382, Duong Nghiep St")
    assert find_corroborating(named("Building 382, Duong Nghiep St"), [earlier], NOW) == ()


def test_a_case_older_than_thirty_days_is_not_linked():
    """Only cases within the window count; the window's edge itself is inside."""
    edge = case("edge", days_ago=30, latitude=LAT, longitude=LON)
    old = case("old", days_ago=30.001, latitude=LAT, longitude=LON)
    assert find_corroborating(at_point(), [edge, old], NOW) == ("edge",)


def test_a_case_from_the_future_is_not_linked():
    """A case created after `now` (clock skew, an import) is ignored: only earlier reports corroborate."""
    future = case("future", days_ago=-0.01, latitude=LAT, longitude=LON)
    assert find_corroborating(at_point(), [future], NOW) == ()


def test_naive_timestamps_are_taken_as_utc():
    """A naive created_at or now is read as UTC instead of failing to compare."""
    naive = CaseSummary(case_id="c1", created_at=datetime(2026, 11, 27, 12, 0), latitude=LAT, longitude=LON)
    assert find_corroborating(at_point(), [naive], NOW) == ("c1",)
    assert find_corroborating(at_point(), [naive], NOW.replace(tzinfo=None)) == ("c1",)


def test_withdrawn_cases_are_passed_and_counted_like_any_other():
    """Corroboration has no notion of withdrawal: a captor may force one, so withdrawn cases still count."""
    assert "withdrawn" not in CaseSummary.model_fields
    assert find_corroborating(at_point(), [case("withdrawn-by-reporter", latitude=LAT, longitude=LON)], NOW)


def test_result_is_sorted_unique_and_independent_of_candidate_order():
    """Ids come back sorted and once each, whatever order the candidates arrive in."""
    candidates = [case(f"case-{n:02d}", days_ago=n % 20, latitude=LAT, longitude=LON) for n in range(12)]
    candidates.append(candidates[3])
    shuffled = candidates[:]
    random.Random(7).shuffle(shuffled)
    expected = tuple(sorted({c.case_id for c in candidates}))
    assert find_corroborating(at_point(), candidates, NOW) == expected
    assert find_corroborating(at_point(), shuffled, NOW) == expected


def test_a_case_linked_both_ways_is_listed_once():
    """A case both near and similarly named is one corroborating case."""
    both = case("c1", latitude=LAT, longitude=LON, area_id="kh-sen-sok", place_details="Building 382")
    report = at_point(area_id="kh-sen-sok", details="bldg 382")
    assert find_corroborating(report, [both], NOW) == ("c1",)


def test_negative_radius_or_window_is_refused():
    """A negative radius or window is a programming error."""
    with pytest.raises(ValueError, match="negative"):
        find_corroborating(at_point(), [], NOW, radius_m=-1)
    with pytest.raises(ValueError, match="negative"):
        find_corroborating(at_point(), [], NOW, window=timedelta(days=-1))


def test_haversine_london_to_paris_is_about_344_km():
    """The great-circle distance London–Paris is about 343.5 km."""
    assert haversine_m(51.5074, -0.1278, 48.8566, 2.3522) == pytest.approx(343_500, abs=1_000)


def test_haversine_one_degree_of_latitude_and_symmetry():
    """One degree of latitude is about 111.2 km; distance is symmetric and zero to itself."""
    assert haversine_m(0, 0, 1, 0) == pytest.approx(111_195, abs=1)
    assert haversine_m(LAT, LON, 10.627, 103.522) == pytest.approx(haversine_m(10.627, 103.522, LAT, LON))
    assert haversine_m(LAT, LON, LAT, LON) == 0


def test_haversine_antipodes_is_half_the_circumference():
    """Opposite points are half a great circle apart, without a math domain error."""
    assert haversine_m(0, 0, 0, 180) == pytest.approx(math.pi * EARTH_RADIUS_M)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Building 382, Duong Nghiep St", "bldg 382 duong nghiep street"),
        ("KK Park", "kk park compound"),
        ("Jin Bei Casino", "JIN BEI casino tower"),
        ("Đường Nghiệp tòa nhà số 382", "duong nghiep building 382"),
        ("No.7, Golden Fortune", "Golden Fortune building #7"),
        ("Golden Fortune compound", "Golden Fortnue"),
        ("building 382", "Building 382, Duong Nghiep St"),
        ("Building 382, floor 5", "bldg 382"),
        ("អគារ ៣៨២", "៣៨២"),
    ],
)
def test_similar_names_match(a, b):
    """Case, accents, punctuation, common words and small typos do not stop a match."""
    assert similar_place_names(a, b)
    assert similar_place_names(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Building 382, Duong Nghiep St", "Building 383, Duong Nghiep St"),
        ("Golden Fortune", "Golden Sands"),
        ("KK Park", "KB Park Huaxin"),
        ("building", "compound"),
        ("", ""),
        ("Jin Bei", "building 7"),
        ("tower A", "tower B"),
    ],
)
def test_different_names_do_not_match(a, b):
    """Different numbers, different names, or nothing but common words do not match."""
    assert not similar_place_names(a, b)
    assert not similar_place_names(b, a)


def test_normalise_drops_common_words_and_keeps_numbers():
    """Normalisation keeps the words that identify a place, glued numbers included."""
    assert normalise_place_name("Bldg. No.382, Duong-Nghiep St.") == ("382", "duong", "nghiep")


def test_only_the_most_recent_corroborating_cases_are_linked():
    """In a surge about one building every earlier case corroborates; the newest 20 are linked, sorted."""
    # Ids in the opposite order to time: "newest" must come from created_at, not from the id.
    candidates = [case(f"c{99 - n:02d}", days_ago=30 - n * 0.5, area_id="kh-sen-sok") for n in range(50)]
    linked = [c.case_id for c in candidates]
    newest = newest_linked(linked, candidates)
    assert len(newest) == MAX_LINKED_CASES == 20
    assert newest == tuple(sorted(c.case_id for c in candidates[-20:]))
    assert newest_linked(linked[:3], candidates) == tuple(sorted(linked[:3]))
    assert newest_linked(linked, candidates, limit=0) == ()
    # An id without a candidate (cannot happen in the service) counts as the oldest.
    assert "zz" not in newest_linked([*linked, "zz"], candidates)
    with pytest.raises(ValueError, match="limit"):
        newest_linked(linked, candidates, limit=-1)
