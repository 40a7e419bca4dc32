"""Secret keys: generate and decode the key Beacon uses to protect stored reports."""

from __future__ import annotations

import base64
import binascii
import secrets

__all__ = ["KEY_BYTES", "InvalidKey", "decode_secret_key", "generate_secret_key"]

KEY_BYTES = 32


class InvalidKey(ValueError):
    """The text is not base64 of at least ``KEY_BYTES`` bytes."""


def generate_secret_key() -> str:
    """Return a fresh key: standard base64 of ``KEY_BYTES`` bytes from the OS's secure random source."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def decode_secret_key(text: str) -> bytes:
    """Decode a key written in standard or URL-safe base64, padded or not.

    Raises ``InvalidKey`` (never quoting ``text``) if it is not base64 or decodes to fewer than
    ``KEY_BYTES`` bytes.
    """
    compact = "".join(text.split())
    standard = compact.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        key = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKey("not base64") from None
    if len(key) < KEY_BYTES:
        raise InvalidKey(f"decodes to {len(key)} bytes, fewer than {KEY_BYTES}")
    return key
