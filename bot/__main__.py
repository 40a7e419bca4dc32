"""Let ``python -m bot`` work like the ``beacon`` command."""

import sys

from bot.cli import main

if __name__ == "__main__":
    sys.exit(main())
