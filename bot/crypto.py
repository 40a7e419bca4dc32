"""Beacon's cryptography: keys derived from the secret, field encryption, pseudonyms, receipts and case ids.

Pure functions and one ``Keyring``; depends only on ``cryptography`` and the standard library. Nothing here
touches the database: storage calls it to encrypt sensitive columns, services call it to make codes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import unicodedata
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "CASE_ID_ALPHABET",
    "MIN_ROOT_BYTES",
    "RECEIPT_DIGITS",
    "DecryptionError",
    "Keyring",
    "compact_json",
    "format_receipt",
    "hash_receipt",
    "key_id_of",
    "new_case_id",
    "new_receipt_code",
    "normalise_case_id",
    "normalise_receipt",
    "verify_receipt",
]

MIN_ROOT_BYTES = 32

# One HKDF `info` label per purpose, so a key serves exactly one job. Changing a label changes every key
# derived from it: existing ciphertexts and indexes would no longer open or match.
_LABEL_FIELDS = b"beacon/v1/field-encryption"
_LABEL_PSEUDONYM = b"beacon/v1/pseudonym"
_LABEL_RECEIPT = b"beacon/v1/receipt-lookup"
_LABEL_INDEX = b"beacon/v1/blind-index"
_LABEL_KEY_ID = b"beacon/v1/key-id"

# Ciphertext layout: version (1 byte) | key id (4) | nonce (12) | AES-GCM ciphertext and 16-byte tag.
_VERSION = 1
_KEY_ID_BYTES = 4
_NONCE_BYTES = 12
_TAG_BYTES = 16
_HEADER_BYTES = 1 + _KEY_ID_BYTES
_MIN_CIPHERTEXT = _HEADER_BYTES + _NONCE_BYTES + _TAG_BYTES


class DecryptionError(Exception):
    """A ciphertext cannot be opened: wrong or unknown key, tampered, malformed, or moved to another field.

    The message never quotes the ciphertext or the plaintext.
    """


def _derive(root: bytes, label: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=label).derive(root)


class _Generation:
    """The keys derived from one root secret."""

    __slots__ = ("aead", "index_key", "key_id", "pseudonym_key", "receipt_key")

    def __init__(self, root: bytes) -> None:
        self.key_id = _derive(root, _LABEL_KEY_ID, _KEY_ID_BYTES)
        self.aead = AESGCM(_derive(root, _LABEL_FIELDS))
        self.pseudonym_key = _derive(root, _LABEL_PSEUDONYM)
        self.receipt_key = _derive(root, _LABEL_RECEIPT)
        self.index_key = _derive(root, _LABEL_INDEX)


def _aad(header: bytes, table: str, column: str, row_id: str) -> bytes:
    """Bind a ciphertext to its place: length-prefixed, so ("ab", "c") and ("a", "bc") differ."""
    parts = [header]
    for part in (table, column, row_id):
        data = part.encode("utf-8")
        parts.append(len(data).to_bytes(4, "big"))
        parts.append(data)
    return b"".join(parts)


def _hmac_hex(key: bytes, data: str) -> str:
    return hmac.new(key, data.encode("utf-8"), hashlib.sha256).hexdigest()


def key_id_of(ciphertext: bytes) -> str:
    """Return the key id (8 hex digits) a ciphertext was sealed under; ``DecryptionError`` if malformed."""
    if len(ciphertext) < _MIN_CIPHERTEXT or ciphertext[0] != _VERSION:
        raise DecryptionError("not a Beacon ciphertext (wrong version or too short)")
    return ciphertext[1:_HEADER_BYTES].hex()


def compact_json(value: Any) -> str:
    """The JSON text ``encrypt_json`` seals: compact, UTF-8 kept, no NaN (``TypeError``/``ValueError``)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class Keyring:
    """The keys Beacon derives (HKDF-SHA256) from ``BEACON_SECRET_KEY``, plus earlier secrets for rotation.

    New ciphertexts and indexes always use ``root``; ciphertexts made under a ``previous`` root still
    decrypt, found by the key id in their header. Keyed indexes (pseudonyms, receipt lookups, blind
    indexes) change with the root: the ``*s`` variants return the value under every root, current first,
    so a lookup can find rows written before a rotation.

    Raises ``ValueError`` if a root is shorter than ``MIN_ROOT_BYTES`` or two roots are the same.
    """

    __slots__ = ("_by_id", "_current", "_generations")

    def __init__(self, root: bytes, *, previous: Sequence[bytes] = ()) -> None:
        for secret in (root, *previous):
            if len(secret) < MIN_ROOT_BYTES:
                raise ValueError(f"a root secret must hold at least {MIN_ROOT_BYTES} bytes")
        self._generations = tuple(_Generation(secret) for secret in (root, *previous))
        self._current = self._generations[0]
        self._by_id = {generation.key_id: generation for generation in self._generations}
        if len(self._by_id) != len(self._generations):
            raise ValueError("the same root secret (or key id) appears twice")

    def __repr__(self) -> str:
        return f"Keyring(key_id={self.key_id!r}, previous={len(self._generations) - 1})"

    @property
    def key_id(self) -> str:
        """The current root's key id, 8 hex digits; written in every new ciphertext's header."""
        return self._current.key_id.hex()

    # --- keyed indexes -------------------------------------------------------------------------------

    def pseudonym(self, telegram_user_id: int) -> str:
        """Return the reporter's pseudonym: HMAC-SHA256 of the user id under its own key, 64 hex digits.

        Stable for the same secret; a plain hash would be reversible by enumerating user ids.
        """
        return _hmac_hex(self._current.pseudonym_key, str(telegram_user_id))

    def pseudonyms(self, telegram_user_id: int) -> tuple[str, ...]:
        """Return the user's pseudonym under every root, current first (to find rows after a rotation)."""
        return tuple(_hmac_hex(g.pseudonym_key, str(telegram_user_id)) for g in self._generations)

    def receipt_lookup(self, code: str) -> str:
        """Return the index that finds a case by its receipt code without storing the code.

        ``code`` is normalised first. Raises ``ValueError`` if it is not a 16-digit receipt code.
        """
        return _hmac_hex(self._current.receipt_key, _require_receipt(code))

    def receipt_lookups(self, code: str) -> tuple[str, ...]:
        """Return ``receipt_lookup(code)`` under every root, current first. Raises like ``receipt_lookup``."""
        digits = _require_receipt(code)
        return tuple(_hmac_hex(g.receipt_key, digits) for g in self._generations)

    def blind_index(self, namespace: str, value: str) -> str:
        """Return a keyed HMAC of ``value`` within ``namespace``: an equality index for encrypted data."""
        return _hmac_hex(self._current.index_key, _namespaced(namespace, value))

    def blind_indexes(self, namespace: str, value: str) -> tuple[str, ...]:
        """Return ``blind_index(namespace, value)`` under every root, current first."""
        data = _namespaced(namespace, value)
        return tuple(_hmac_hex(g.index_key, data) for g in self._generations)

    # --- field encryption ----------------------------------------------------------------------------

    def encrypt(self, plaintext: bytes, *, table: str, column: str, row_id: str) -> bytes:
        """Seal ``plaintext`` with AES-256-GCM under the current key, bound to table, column and row id.

        Each call uses a fresh random 96-bit nonce, so the same plaintext never encrypts the same way.
        """
        header = bytes([_VERSION]) + self._current.key_id
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._current.aead.encrypt(nonce, plaintext, _aad(header, table, column, row_id))
        return header + nonce + sealed

    def decrypt(self, ciphertext: bytes, *, table: str, column: str, row_id: str) -> bytes:
        """Open a ciphertext made by ``encrypt`` for exactly this ``table``/``column``/``row_id``.

        Raises ``DecryptionError`` if it is malformed, sealed under a key this keyring lacks, tampered
        with, or was sealed for another table, column or row.
        """
        key_id = bytes.fromhex(key_id_of(ciphertext))
        generation = self._by_id.get(key_id)
        if generation is None:
            raise DecryptionError(f"sealed under unknown key id {key_id.hex()} (missing previous secret?)")
        header = ciphertext[:_HEADER_BYTES]
        nonce = ciphertext[_HEADER_BYTES : _HEADER_BYTES + _NONCE_BYTES]
        sealed = ciphertext[_HEADER_BYTES + _NONCE_BYTES :]
        try:
            return generation.aead.decrypt(nonce, sealed, _aad(header, table, column, row_id))
        except InvalidTag:
            raise DecryptionError(
                f"ciphertext for {table}.{column} does not authenticate (tampered, or moved from another row)"
            ) from None

    def encrypt_text(self, text: str, *, table: str, column: str, row_id: str) -> bytes:
        """Encrypt ``text`` as UTF-8 (see ``encrypt``)."""
        return self.encrypt(text.encode("utf-8"), table=table, column=column, row_id=row_id)

    def decrypt_text(self, ciphertext: bytes, *, table: str, column: str, row_id: str) -> str:
        """Decrypt to text (see ``decrypt``); raises ``DecryptionError`` also if it is not UTF-8."""
        plaintext = self.decrypt(ciphertext, table=table, column=column, row_id=row_id)
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptionError(f"{table}.{column} is not UTF-8 text") from None

    def encrypt_json(self, value: Any, *, table: str, column: str, row_id: str) -> bytes:
        """Encrypt ``value`` as compact JSON (see ``encrypt``).

        Raises ``TypeError`` or ``ValueError`` if ``value`` is not JSON-serialisable (NaN included).
        """
        return self.encrypt_text(compact_json(value), table=table, column=column, row_id=row_id)

    def decrypt_json(self, ciphertext: bytes, *, table: str, column: str, row_id: str) -> Any:
        """Decrypt a value sealed by ``encrypt_json``; raises ``DecryptionError`` also if it is not JSON."""
        text = self.decrypt_text(ciphertext, table=table, column=column, row_id=row_id)
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise DecryptionError(f"{table}.{column} is not JSON") from None


def _namespaced(namespace: str, value: str) -> str:
    if "\x00" in namespace:
        raise ValueError("a blind-index namespace cannot contain NUL")
    return f"{namespace}\x00{value}"


# --- receipts ----------------------------------------------------------------------------------------

RECEIPT_DIGITS = 16

# Separators people type between groups of a phone number, including the Unicode dashes phones insert.
_RECEIPT_SEPARATORS = frozenset("-.\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d\uff0e")

_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SCRYPT_SALT_BYTES = 16
_SCRYPT_DKLEN = 32
# verify_receipt reads the cost from the stored value; cap it so a corrupt value cannot exhaust memory.
_SCRYPT_MAX_MEMORY = 64 * 1024 * 1024


def new_receipt_code() -> str:
    """Return a fresh receipt code: 16 digits from the OS's CSPRNG, the first not 0 (about 53 bits).

    It looks like a phone number, so a reporter can keep it in their contacts without drawing attention.
    """
    return secrets.choice("123456789") + "".join(
        secrets.choice("0123456789") for _ in range(RECEIPT_DIGITS - 1)
    )


def normalise_receipt(text: str) -> str | None:
    """Return the 16 ASCII digits of a receipt code as typed, or ``None`` if ``text`` is not one.

    Spaces, dashes and dots anywhere and one leading ``+`` are ignored; digits of any script (Thai,
    Myanmar, Arabic-Indic, full-width ...) count as their ASCII value. Never raises.
    """
    stripped = text.strip()
    if stripped.startswith(("+", "\uff0b")):
        stripped = stripped[1:]
    digits: list[str] = []
    for char in stripped:
        if char.isspace() or char in _RECEIPT_SEPARATORS:
            continue
        value = unicodedata.decimal(char, None)
        if value is None:
            return None
        digits.append(str(value))
        if len(digits) > RECEIPT_DIGITS:
            return None
    return "".join(digits) if len(digits) == RECEIPT_DIGITS else None


def _require_receipt(code: str) -> str:
    digits = normalise_receipt(code)
    if digits is None:
        raise ValueError("not a 16-digit receipt code")
    return digits


def format_receipt(code: str) -> str:
    """Group a receipt code in fours, like "1234 5678 9012 3456". Raises ``ValueError`` if it is not one."""
    digits = _require_receipt(code)
    return " ".join(digits[start : start + 4] for start in range(0, RECEIPT_DIGITS, 4))


def hash_receipt(code: str) -> str:
    """Return a slow salted hash of a receipt code, ``scrypt$16384$8$1$<salt b64>$<hash b64>``.

    ``code`` is normalised first. Raises ``ValueError`` if it is not a 16-digit receipt code. Takes
    tens of milliseconds by design: run it off the event loop.
    """
    digits = _require_receipt(code)
    salt = secrets.token_bytes(_SCRYPT_SALT_BYTES)
    digest = _scrypt(digits, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_DKLEN)
    return "$".join(
        (
            "scrypt",
            str(_SCRYPT_N),
            str(_SCRYPT_R),
            str(_SCRYPT_P),
            base64.b64encode(salt).decode("ascii"),
            base64.b64encode(digest).decode("ascii"),
        )
    )


def verify_receipt(code: str, stored: str) -> bool:
    """Tell whether ``code`` is the receipt code hashed in ``stored``, comparing in constant time.

    Returns ``False`` (never raises) if ``code`` is not a receipt code or ``stored`` is malformed.
    Slow by design, like ``hash_receipt``.
    """
    digits = normalise_receipt(code)
    parsed = _parse_scrypt(stored)
    if digits is None or parsed is None:
        return False
    n, r, p, salt, expected = parsed
    try:
        actual = _scrypt(digits, salt, n, r, p, len(expected))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(digits: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        digits.encode("ascii"), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=2 * _SCRYPT_MAX_MEMORY
    )


def _parse_scrypt(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    """Split a stored scrypt hash into (n, r, p, salt, hash), or ``None`` if it is malformed or too costly."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return None
    if not all(part.isascii() and part.isdigit() and len(part) <= 8 for part in parts[1:4]):
        return None
    n, r, p = (int(part) for part in parts[1:4])
    if n < 2 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16 or 128 * n * r > _SCRYPT_MAX_MEMORY:
        return None
    try:
        salt = base64.b64decode(parts[4], validate=True)
        expected = base64.b64decode(parts[5], validate=True)
    except (binascii.Error, ValueError):
        return None
    if not salt or not 16 <= len(expected) <= 64:
        return None
    return n, r, p, salt, expected


# --- case ids ----------------------------------------------------------------------------------------

# 31 symbols: digits and capitals without 0/O, 1/I/L, which are misread when a coordinator types an id.
CASE_ID_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_CASE_ID_LENGTH = 8


def new_case_id() -> str:
    """Return a fresh case id like ``K7MX-Q9PT``: 8 CSPRNG symbols from ``CASE_ID_ALPHABET`` (~39.6 bits).

    Random, not sequential: an id reveals neither how many cases exist nor when one was filed, and cannot
    be guessed from another. Collisions are possible (birthday bound near a million cases), so storage
    refuses a duplicate and the caller draws again.
    """
    symbols = "".join(secrets.choice(CASE_ID_ALPHABET) for _ in range(_CASE_ID_LENGTH))
    return f"{symbols[:4]}-{symbols[4:]}"


def normalise_case_id(text: str) -> str | None:
    """Return the case id a coordinator typed (any case, with or without the dash), or ``None``."""
    compact = "".join(text.split()).replace("-", "").upper()
    if len(compact) != _CASE_ID_LENGTH or any(char not in CASE_ID_ALPHABET for char in compact):
        return None
    return f"{compact[:4]}-{compact[4:]}"
