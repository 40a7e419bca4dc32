"""The gazetteer: countries and areas where scam compounds are known, for the reporter's "where" question.

The list ships as `bot/data/gazetteer.json`; a deployer may pass an extra file of the same shape to add
countries and areas, or to correct a shipped area (an extra area with a shipped id replaces it). Coordinates
are approximate centres with a `precision_km`; each area says where it came from in `source`.

The gazetteer holds place names only. A loader check refuses any run of seven or more digits, so that a
phone number (of a hotline, shelter or embassy) cannot slip in: contact details belong to coordinators.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.domain.corroboration import haversine_m

_PHONE_LIKE = re.compile(r"\d{7,}")


class GazetteerError(Exception):
    """A gazetteer file is unreadable, not JSON, or breaks a rule; the message names the file and the rule."""


def _no_phone_numbers(value: str | None) -> str | None:
    if value is not None and _PHONE_LIKE.search(value):
        raise ValueError("contains a run of 7 or more digits, which looks like a phone number")
    return value


class Country(BaseModel):
    """A country in which reporters may place a compound."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[A-Z]{2}$")  # ISO 3166-1 alpha-2
    name: str = Field(min_length=1, max_length=100)  # in English; handlers translate
    local_name: str | None = Field(default=None, min_length=1, max_length=100)

    _check_digits = field_validator("name", "local_name")(_no_phone_numbers)


class Area(BaseModel):
    """A town, district or zone, with the approximate coordinates of its centre."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z]{2}-[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=48)  # "kh-preah-sihanouk"
    country: str = Field(pattern=r"^[A-Z]{2}$")
    name: str = Field(min_length=1, max_length=100)
    local_name: str | None = Field(default=None, min_length=1, max_length=100)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    precision_km: float = Field(gt=0, le=500)  # how far the real place may be from these coordinates
    source: str = Field(min_length=1, max_length=500)

    _check_digits = field_validator("name", "local_name", "source")(_no_phone_numbers)

    @model_validator(mode="after")
    def _id_names_its_country(self) -> Area:
        if not self.id.startswith(self.country.lower() + "-"):
            raise ValueError(f"area id {self.id!r} must start with {self.country.lower()!r}-")
        return self


class GazetteerFile(BaseModel):
    """The shape of a gazetteer JSON file, shipped or extra. Ids are unique within a file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str | None = None
    notes: str | None = None
    countries: tuple[Country, ...] = ()
    areas: tuple[Area, ...] = ()

    _check_digits = field_validator("version", "notes")(_no_phone_numbers)

    @model_validator(mode="after")
    def _unique_ids(self) -> GazetteerFile:
        for label, ids in (
            ("country code", [country.code for country in self.countries]),
            ("area id", [area.id for area in self.areas]),
        ):
            duplicates = sorted({item for item in ids if ids.count(item) > 1})
            if duplicates:
                raise ValueError(f"duplicate {label}: {', '.join(duplicates)}")
        return self


class Gazetteer:
    """Validated countries and areas, in file order (shipped first, then the deployer's additions)."""

    def __init__(self, countries: Iterable[Country], areas: Iterable[Area]) -> None:
        """Index `countries` and `areas`. Raises GazetteerError if an area's country is not listed."""
        self._countries = {country.code: country for country in countries}
        self._areas = {area.id: area for area in areas}
        orphans = sorted(area.id for area in self._areas.values() if area.country not in self._countries)
        if orphans:
            raise GazetteerError(f"areas in a country that is not listed: {', '.join(orphans)}")

    def countries(self) -> tuple[Country, ...]:
        """Every country, in file order."""
        return tuple(self._countries.values())

    def country(self, code: str) -> Country | None:
        """The country with this ISO code, or None if it is not listed (a stale button, for instance)."""
        return self._countries.get(code)

    def areas_in(self, country: str) -> tuple[Area, ...]:
        """The areas of one country, in file order; empty for an unknown country."""
        return tuple(area for area in self._areas.values() if area.country == country)

    def area(self, area_id: str) -> Area | None:
        """The area with this id, or None if it is not listed."""
        return self._areas.get(area_id)

    def nearest_area(self, latitude: float, longitude: float, max_km: float = 50) -> Area | None:
        """The area whose centre is nearest the point, within `max_km`, or None; ties go to the lower id."""
        best: tuple[float, str] | None = None
        for area in self._areas.values():
            distance = haversine_m(latitude, longitude, area.latitude, area.longitude)
            if distance <= max_km * 1000 and (best is None or (distance, area.id) < best):
                best = (distance, area.id)
        return None if best is None else self._areas[best[1]]


def _read(text: str, origin: str) -> GazetteerFile:
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise GazetteerError(f"{origin}: not valid JSON: {error}") from None
    except RecursionError:
        raise GazetteerError(f"{origin}: not valid JSON: nested too deeply") from None
    try:
        return GazetteerFile.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'file'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise GazetteerError(f"{origin}: {problems}") from None


def load_gazetteer(extra: Path | None = None) -> Gazetteer:
    """Load the shipped gazetteer, extended by a deployer's `extra` file if given.

    An extra country or area with a shipped code or id replaces the shipped one. Raises GazetteerError,
    naming the file and the problem, if a file cannot be read, is not JSON, or breaks a rule.
    """
    shipped = resources.files("bot") / "data" / "gazetteer.json"
    base = _read(shipped.read_text(encoding="utf-8"), "bot/data/gazetteer.json")
    countries = {country.code: country for country in base.countries}
    areas = {area.id: area for area in base.areas}
    if extra is not None:
        try:
            text = extra.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise GazetteerError(f"{extra}: cannot be read: {error}") from None
        added = _read(text, str(extra))
        countries.update((country.code, country) for country in added.countries)
        orphans = sorted(area.id for area in added.areas if area.country not in countries)
        if orphans:
            raise GazetteerError(f"{extra}: areas in a country that is not listed: {', '.join(orphans)}")
        areas.update((area.id, area) for area in added.areas)
    return Gazetteer(countries.values(), areas.values())
