"""A local Telegram Bot API emulator with a browser UI; it speaks only the Bot API and knows no bot."""

__all__ = ["SandboxClient", "SandboxServer"]

from sandbox.client import SandboxClient
from sandbox.server import SandboxServer
