"""What every ``beacon`` subcommand shares on the terminal: its exit statuses and its one-line errors."""

from __future__ import annotations

import sys

__all__ = ["EXIT_FAILURE", "EXIT_USAGE", "PROG", "error"]

PROG = "beacon"
EXIT_FAILURE = 1
EXIT_USAGE = 2


def error(message: str, kind: str = "error") -> None:
    """Print one error line on stderr: ``beacon: <kind>: <message>``."""
    print(f"{PROG}: {kind}: {message}", file=sys.stderr)
