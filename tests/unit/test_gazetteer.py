"""Gazetteer: the shipped list of compound hubs, a deployer's extra file, and lookups."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.domain.gazetteer import GazetteerError, load_gazetteer

SHIPPED = Path(__file__).resolve().parents[2] / "bot" / "data" / "gazetteer.json"

# Rough (min lat, max lat, min lon, max lon) boxes around each country.
BOXES = {
    "KH": (9.9, 14.7, 102.3, 107.7),
    "MM": (9.5, 28.6, 92.1, 101.2),
    "LA": (13.9, 22.5, 100.0, 107.7),
    "TH": (5.6, 20.5, 97.3, 105.7),
    "PH": (4.5, 21.2, 116.9, 126.7),
    "MY": (0.8, 7.4, 99.6, 119.3),
}
# Hubs named in REFERENCE.md section 1 that must be offered.
HUBS = [
    "kh-phnom-penh",
    "kh-sen-sok",
    "kh-toul-kork",
    "kh-preah-sihanouk",
    "kh-pailin",
    "kh-anlong-veng",
    "kh-o-smach",
    "kh-kandal",
    "kh-pursat",
    "kh-koh-kong",
    "kh-bavet",
    "kh-chrey-thom",
    "kh-kampot",
    "kh-oddar-meanchey",
    "kh-poipet",
    "kh-banteay-meanchey",
    "kh-dara-sakor-sez",
    "kh-thmor-da-sez",
    "mm-myawaddy",
    "mm-shwe-kokko",
    "mm-kk-park",
    "mm-tachileik",
    "mm-laukkaing",
    "la-golden-triangle-sez",
]


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "extra.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def an_area(**overrides: object) -> dict[str, object]:
    area: dict[str, object] = {
        "id": "kh-test-town",
        "country": "KH",
        "name": "Test Town",
        "latitude": 12.0,
        "longitude": 104.0,
        "precision_km": 10,
        "source": "deployer's field team",
    }
    area.update(overrides)
    return area


def test_shipped_gazetteer_loads_with_every_hub():
    """The shipped file loads and lists the six countries and every hub from the reference."""
    gazetteer = load_gazetteer()
    assert {country.code for country in gazetteer.countries()} == set(BOXES)
    assert [hub for hub in HUBS if gazetteer.area(hub) is None] == []
    assert all(gazetteer.areas_in(code) for code in BOXES)


def test_every_area_lies_in_its_countrys_bounding_box():
    """Each area's coordinates fall inside a rough box around its country."""
    outside = []
    for country in BOXES:
        low_lat, high_lat, low_lon, high_lon = BOXES[country]
        for area in load_gazetteer().areas_in(country):
            if not (low_lat <= area.latitude <= high_lat and low_lon <= area.longitude <= high_lon):
                outside.append(area.id)
    assert outside == []


def test_ids_in_the_shipped_file_are_unique():
    """No area id or country code appears twice in the shipped file."""
    data = json.loads(SHIPPED.read_text(encoding="utf-8"))
    area_ids = [area["id"] for area in data["areas"]]
    codes = [country["code"] for country in data["countries"]]
    assert len(area_ids) == len(set(area_ids))
    assert len(codes) == len(set(codes))


def test_shipped_file_has_nothing_that_looks_like_a_phone_number():
    """No run of seven or more digits: the gazetteer never carries a hotline, shelter or embassy number."""
    assert re.findall(r"\d{7,}", SHIPPED.read_text(encoding="utf-8")) == []


def test_every_area_says_its_coordinates_are_approximate():
    """Each area's source marks its coordinates as approximate and to be verified."""
    for country in BOXES:
        for area in load_gazetteer().areas_in(country):
            assert "approximate" in area.source, area.id
            assert "verify before operational use" in area.source, area.id
            assert 5 <= area.precision_km <= 30, area.id


def test_an_extra_file_adds_countries_and_areas(tmp_path):
    """A deployer's file adds a country and areas, after the shipped ones."""
    extra = write(
        tmp_path,
        {
            "countries": [{"code": "VN", "name": "Vietnam"}],
            "areas": [
                an_area(),
                an_area(id="vn-moc-bai", country="VN", name="Moc Bai", latitude=11.07, longitude=106.2),
            ],
        },
    )
    gazetteer = load_gazetteer(extra)
    assert gazetteer.country("VN") is not None
    assert [area.id for area in gazetteer.areas_in("VN")] == ["vn-moc-bai"]
    assert gazetteer.areas_in("KH")[-1].id == "kh-test-town"
    assert gazetteer.area("kh-poipet") is not None


def test_an_extra_area_with_a_shipped_id_corrects_it(tmp_path):
    """A deployer who has verified a place can correct its shipped coordinates."""
    extra = write(
        tmp_path, {"areas": [an_area(id="kh-poipet", name="Poipet", latitude=13.66, longitude=102.56)]}
    )
    poipet = load_gazetteer(extra).area("kh-poipet")
    assert poipet is not None
    assert (poipet.latitude, poipet.source) == (13.66, "deployer's field team")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ([], "file: Input should be"),
        ({"areas": [an_area(latitude=123)]}, "areas.0.latitude"),
        ({"areas": [an_area(longitude=-181)]}, "areas.0.longitude"),
        ({"areas": [an_area(id="zz-nowhere", country="ZZ")]}, "zz-nowhere"),
        ({"areas": [an_area(), an_area()]}, "duplicate area id: kh-test-town"),
        ({"areas": [an_area(name="Call 0123456789")]}, "phone number"),
        ({"areas": [an_area(id="Bad Id")]}, "areas.0.id"),
        ({"areas": [an_area(id="mm-wrong-prefix")]}, "must start with 'kh'-"),
        ({"areas": [an_area(lat=12.0)]}, "areas.0.lat"),
        ({"areas": [an_area(precision_km=0)]}, "areas.0.precision_km"),
        ({"countries": [{"code": "vn", "name": "Vietnam"}]}, "countries.0.code"),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "latitude-out-of-range",
        "longitude-out-of-range",
        "area-in-unknown-country",
        "duplicate-id",
        "phone-number",
        "malformed-id",
        "id-of-another-country",
        "misspelt-field",
        "zero-precision",
        "lowercase-country-code",
    ],
)
def test_a_broken_extra_file_raises_with_a_message_naming_the_problem(tmp_path, content, message):
    """A broken extra file raises GazetteerError naming the file and what is wrong."""
    path = tmp_path / "extra.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    with pytest.raises(GazetteerError) as raised:
        load_gazetteer(path)
    assert message in str(raised.value)
    assert str(path) in str(raised.value)


def test_a_missing_extra_file_raises_gazetteer_error(tmp_path):
    """An extra file that does not exist is a GazetteerError, not an OSError."""
    with pytest.raises(GazetteerError, match="cannot be read"):
        load_gazetteer(tmp_path / "missing.json")


def test_nearest_area_finds_the_closest_hub():
    """A point near Poipet resolves to Poipet; a point in central Phnom Penh to Phnom Penh itself."""
    gazetteer = load_gazetteer()
    poipet = gazetteer.nearest_area(13.65, 102.57)
    assert poipet is not None
    assert poipet.id == "kh-poipet"
    centre = gazetteer.nearest_area(11.5564, 104.9282)
    assert centre is not None
    assert centre.id == "kh-phnom-penh"


def test_nearest_area_is_none_beyond_max_km():
    """A point far from every area, or beyond max_km, has no nearest area."""
    gazetteer = load_gazetteer()
    assert gazetteer.nearest_area(0.0, 0.0) is None
    kampong_thom_road = (12.2, 104.9)  # about 70 km from the nearest Phnom Penh area
    assert gazetteer.nearest_area(*kampong_thom_road) is None
    assert gazetteer.nearest_area(*kampong_thom_road, max_km=100) is not None


def test_unknown_ids_give_none_or_nothing():
    """An unknown area id or country (a stale button) gives None or an empty tuple, not an error."""
    gazetteer = load_gazetteer()
    assert gazetteer.area("kh-atlantis") is None
    assert gazetteer.country("ZZ") is None
    assert gazetteer.areas_in("ZZ") == ()
