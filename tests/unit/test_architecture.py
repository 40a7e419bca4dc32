"""Architecture: the import rules of STYLE.md ("who may import whom"), checked by walking imports."""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIRST_PARTY = frozenset({"bot", "handlers", "storage", "sandbox"})


@dataclass(frozen=True)
class Rule:
    """What one package may import. ``None`` in an allow-list means "anything not in never"."""

    package: str
    never: tuple[str, ...]
    first_party: tuple[str, ...] | None = None
    third_party: tuple[str, ...] | None = None


# The table in STYLE.md. The composition root (bot/app.py, bot/cli.py) may import everything.
RULES = [
    Rule(
        "bot.domain",
        never=("telegram", "aiosqlite", "babel", "storage", "handlers"),
        first_party=("bot.domain",),
        third_party=("pydantic",),
    ),
    Rule(
        "bot.services",
        never=("telegram", "aiosqlite", "storage", "handlers"),
        # bot.crypto is pure (the cryptography package): receipts, pseudonyms and ids are made there.
        first_party=("bot.domain", "bot.services", "bot.crypto"),
    ),
    Rule(
        "storage",
        never=("telegram", "handlers", "bot.i18n", "babel"),
        # Storage encrypts sensitive columns itself, with the keys bot.crypto derives.
        first_party=("bot.domain", "bot.crypto", "storage"),
        third_party=("aiosqlite",),
    ),
    Rule(
        "handlers",
        never=("aiosqlite", "storage"),
        first_party=("bot.domain", "bot.services", "bot.i18n", "handlers"),
    ),
    Rule("sandbox", never=("bot", "handlers", "storage"), first_party=("sandbox",)),
]


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def imported_names(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """Return (line, dotted name) for every import in ``source``, relative imports resolved.

    ``from a import b`` yields ``a.b``: ``b`` may be a submodule, and prefix rules treat an
    attribute the same way. Imports under ``if TYPE_CHECKING:`` count too.
    """
    package_parts = module.split(".") if is_package else module.split(".")[:-1]
    names: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            names.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)
    return names


def violations(rule: Rule, source: str, module: str, is_package: bool = False) -> list[str]:
    """Return a description of each import in ``source`` that ``rule`` forbids."""
    found = []
    for line, name in imported_names(source, module, is_package):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names:
            continue
        if _under(name, rule.never):
            reason = "never allowed"
        elif top in FIRST_PARTY:
            reason = "" if rule.first_party is None or _under(name, rule.first_party) else "not allowed"
        else:
            reason = "" if rule.third_party is None or top in rule.third_party else "not allowed"
        if reason:
            found.append(f"{module}:{line} imports {name} ({reason} in {rule.package})")
    return found


def modules_of(package: str) -> list[tuple[Path, str, bool]]:
    """Return (file, dotted module name, is package) for each Python file of ``package``."""
    root = REPO.joinpath(*package.split("."))
    files = sorted(root.rglob("*.py")) if root.is_dir() else [root.with_suffix(".py")]
    found = []
    for path in files:
        if not path.is_file():
            continue
        parts = path.relative_to(REPO).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        found.append((path, ".".join(parts[:-1] if is_package else parts), is_package))
    return found


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.package)
def test_package_imports_only_what_the_style_guide_allows(rule):
    """Each layer imports only the layers and libraries its row of the STYLE.md table allows."""
    modules = modules_of(rule.package)
    if not modules:
        pytest.skip(f"{rule.package} has no code yet")
    problems = [
        problem
        for path, module, is_package in modules
        for problem in violations(rule, path.read_text(encoding="utf-8"), module, is_package)
    ]
    assert problems == []


def test_checker_catches_direct_relative_and_from_imports():
    """The walker itself sees `import x`, `from x import y`, relative and TYPE_CHECKING imports."""
    handlers = next(rule for rule in RULES if rule.package == "handlers")
    source = (
        "import aiosqlite\n"
        "from storage import db\n"
        "from ..storage.db import open_database\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from bot.config import Settings\n"
        "from bot.i18n import get_translator\n"
        "from .common import translator_for\n"
        "import telegram.ext\n"
    )
    found = violations(handlers, source, "handlers.example")
    assert [problem.split(" (")[0] for problem in found] == [
        "handlers.example:1 imports aiosqlite",
        "handlers.example:2 imports storage.db",
        "handlers.example:3 imports storage.db.open_database",
        "handlers.example:6 imports bot.config.Settings",
    ]


def test_relative_imports_in_a_package_init_resolve_to_the_package():
    """`from . import x` in pkg/__init__.py means pkg.x, not the parent's x."""
    assert imported_names("from . import db", "storage", is_package=True) == [(1, "storage.db")]
    assert imported_names("from . import db", "storage.migrations") == [(1, "storage.db")]
