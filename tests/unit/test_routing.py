"""Routing rules: the first matching rule picks the coordinators' group; broken files fail clearly."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.models import Place, Report
from bot.domain.routing import RoutingError, load_routing

DEFAULT = -1000000000001
RULES = """
[[rule]]
chat_id = -1001111111111
countries = ["MM"]

[[rule]]
chat_id = -1002222222222
languages = ["vi"]
areas = ["kh-poipet", "kh-bavet"]
"""


@pytest.fixture
def routing(tmp_path: Path):
    path = tmp_path / "routing.toml"
    path.write_text(RULES, encoding="utf-8")
    return load_routing(path)


def report(language: str = "en", country: str | None = None, area: str | None = None) -> Report:
    return Report(language=language, place=Place(country=country, area_id=area))


def test_without_a_file_everything_goes_to_the_default_group():
    """No routing file: every case goes to BEACON_COORDINATOR_CHAT_ID."""
    assert load_routing(None).chat_for(report("vi", "MM"), DEFAULT) == DEFAULT


def test_the_first_matching_rule_wins(routing):
    """A Myanmar case goes to the Myanmar desk even when its reporter writes Vietnamese."""
    assert routing.chat_for(report("vi", "MM", "mm-kk-park"), DEFAULT) == -1001111111111


def test_every_given_criterion_must_match(routing):
    """The Vietnamese rule needs both the language and one of its areas."""
    assert routing.chat_for(report("vi", "KH", "kh-poipet"), DEFAULT) == -1002222222222
    assert routing.chat_for(report("vi", "KH", "kh-sen-sok"), DEFAULT) == DEFAULT
    assert routing.chat_for(report("zh_Hans", "KH", "kh-poipet"), DEFAULT) == DEFAULT


def test_every_group_is_listed_once_default_first(routing):
    """The groups where staff may act: the default, then each routed group."""
    assert routing.chats(DEFAULT) == [DEFAULT, -1001111111111, -1002222222222]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[[rule]]\nchat_id = -100\n", "at least one of"),
        ('[[rule]]\nchat_id = 5\ncountries = ["MM"]\n', "rule.0.chat_id"),
        ('[[rule]]\nchat_id = -100\ncountry = ["MM"]\n', "rule.0.country"),
        ("[[rule]\nchat_id = -100", "not valid TOML"),
    ],
    ids=["no criterion", "positive chat id", "misspelt key", "broken TOML"],
)
def test_a_broken_file_is_refused_with_a_clear_reason(tmp_path: Path, text: str, problem: str):
    """Each mistake in the routing file gives one line naming where and what."""
    path = tmp_path / "routing.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RoutingError, match=problem):
        load_routing(path)


def test_a_missing_file_is_refused(tmp_path: Path):
    """A routing path that does not exist is an error, not silently no routing."""
    with pytest.raises(RoutingError, match="cannot read"):
        load_routing(tmp_path / "missing.toml")


@given(st.text(max_size=300))
def test_any_text_either_loads_or_raises_routing_error(text: str):
    """Fuzz: whatever the file holds, loading never fails with anything but RoutingError."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "routing.toml"
        path.write_text(text, encoding="utf-8")
        with contextlib.suppress(RoutingError):
            load_routing(path)
