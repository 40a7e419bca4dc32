"""Routing rules: which coordinators' group a case goes to, by reporter language, country or area.

A deployer's TOML file (BEACON_ROUTING) lists rules; the first rule whose every given criterion matches
wins, and a case no rule matches goes to BEACON_COORDINATOR_CHAT_ID. Example:

    [[rule]]
    chat_id = -1001111111111      # EXAMPLE id: the Myanmar desk's group
    countries = ["MM"]

    [[rule]]
    chat_id = -1002222222222      # EXAMPLE id: Vietnamese-speaking caseworkers
    languages = ["vi"]
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.domain.models import Report


class RoutingError(Exception):
    """The routing file cannot be read or is not valid; the message says where and why."""


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    chat_id: int = Field(lt=0, description="a group's id (groups have negative ids)")
    languages: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    areas: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _has_a_criterion(self) -> Rule:
        if not (self.languages or self.countries or self.areas):
            raise ValueError("a rule needs at least one of languages, countries, areas")
        return self

    def matches(self, report: Report) -> bool:
        place = report.place
        return (
            (not self.languages or report.language in self.languages)
            and (not self.countries or (place.country or "") in self.countries)
            and (not self.areas or (place.area_id or "") in self.areas)
        )


class Routing(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: tuple[Rule, ...] = ()

    def chat_for(self, report: Report, default: int) -> int:
        """The group a case with this report goes to."""
        return next((rule.chat_id for rule in self.rule if rule.matches(report)), default)

    def chats(self, default: int) -> list[int]:
        """Every coordinators' group: the default first, then each routed one once."""
        return list(dict.fromkeys([default, *(rule.chat_id for rule in self.rule)]))


def load_routing(path: Path | None) -> Routing:
    """Read the routing rules (none when `path` is None). Raises RoutingError with a one-line reason."""
    if path is None:
        return Routing()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise RoutingError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise RoutingError(f"{path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise RoutingError(f"{path} is not valid TOML: {error}") from None
    except RecursionError:
        raise RoutingError(f"{path} is not valid TOML: nested too deeply") from None
    try:
        return Routing.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise RoutingError(f"{path}: {where}: {first['msg']}") from None
