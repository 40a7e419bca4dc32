"""bot.crypto: field encryption, key rotation, pseudonyms, receipt codes and their hashes, case ids."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.crypto import (
    CASE_ID_ALPHABET,
    DecryptionError,
    Keyring,
    format_receipt,
    hash_receipt,
    key_id_of,
    new_case_id,
    new_receipt_code,
    normalise_case_id,
    normalise_receipt,
    verify_receipt,
)
from tests.storage.factories import OTHER_ROOT, ROOT

KEYRING = Keyring(ROOT)
PLACE = {"table": "case_secrets", "column": "details", "row_id": "K7MX-Q9PT"}


# --- field encryption --------------------------------------------------------------------------------


@given(plaintext=st.binary(max_size=4096), table=st.text(), column=st.text(), row_id=st.text())
def test_any_bytes_encrypt_and_decrypt_back_for_the_same_place(plaintext, table, column, row_id):
    """Whatever the bytes and wherever they are bound, decrypting gives them back."""
    sealed = KEYRING.encrypt(plaintext, table=table, column=column, row_id=row_id)
    assert KEYRING.decrypt(sealed, table=table, column=column, row_id=row_id) == plaintext


@given(text=st.text(max_size=2000))
def test_any_text_round_trips_through_encrypt_text(text):
    """Text, including RTL, zero-width and astral characters, comes back unchanged."""
    assert KEYRING.decrypt_text(KEYRING.encrypt_text(text, **PLACE), **PLACE) == text


def test_json_values_round_trip():
    """encrypt_json/decrypt_json carry nested JSON values."""
    value = {"step": 3, "draft": {"details": "ở đâu", "conditions": ["violence"]}, "ok": True, "n": None}
    assert KEYRING.decrypt_json(KEYRING.encrypt_json(value, **PLACE), **PLACE) == value


def test_values_that_are_not_json_are_refused_when_encrypting():
    """A set or NaN is a programming error, reported before anything is written."""
    with pytest.raises(TypeError):
        KEYRING.encrypt_json({1, 2}, **PLACE)
    with pytest.raises(ValueError, match="JSON"):
        KEYRING.encrypt_json(float("nan"), **PLACE)


def test_the_same_plaintext_encrypts_differently_each_time():
    """A fresh random nonce per ciphertext: equal values cannot be spotted by equal ciphertexts."""
    assert KEYRING.encrypt(b"same", **PLACE) != KEYRING.encrypt(b"same", **PLACE)


def test_ciphertext_does_not_contain_the_plaintext():
    """The sealed bytes do not include the text in clear."""
    assert b"secret compound" not in KEYRING.encrypt(b"secret compound", **PLACE)


def test_decrypting_with_the_wrong_key_fails_loudly():
    """Another secret cannot open the ciphertext, and says so instead of returning garbage."""
    sealed = KEYRING.encrypt(b"hello", **PLACE)
    with pytest.raises(DecryptionError, match="unknown key id"):
        Keyring(OTHER_ROOT).decrypt(sealed, **PLACE)


@pytest.mark.parametrize(
    "moved",
    [
        {"row_id": "ZZZZ-ZZZZ"},
        {"column": "victim_name"},
        {"table": "case_additions"},
    ],
    ids=["another row", "another column", "another table"],
)
def test_a_ciphertext_moved_to_another_row_column_or_table_fails_loudly(moved):
    """Associated data binds a ciphertext to its place: copied elsewhere, it does not open."""
    sealed = KEYRING.encrypt(b"the details of case K7MX-Q9PT", **PLACE)
    with pytest.raises(DecryptionError, match="does not authenticate"):
        KEYRING.decrypt(sealed, **(PLACE | moved))


def test_bound_parts_cannot_be_shifted_between_fields():
    """("ab", "c") and ("a", "bc") are different places: the parts are length-prefixed."""
    sealed = KEYRING.encrypt(b"x", table="ab", column="c", row_id="r")
    with pytest.raises(DecryptionError):
        KEYRING.decrypt(sealed, table="a", column="bc", row_id="r")


@given(data=st.data())
def test_flipping_any_bit_of_a_ciphertext_fails_loudly(data):
    """Tampering anywhere (header, nonce, body or tag) is detected."""
    sealed = bytearray(KEYRING.encrypt(b"a compound near the river", **PLACE))
    index = data.draw(st.integers(min_value=0, max_value=len(sealed) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    sealed[index] ^= 1 << bit
    with pytest.raises(DecryptionError):
        KEYRING.decrypt(bytes(sealed), **PLACE)


@given(garbage=st.binary(max_size=100))
def test_garbage_never_decrypts_and_never_raises_anything_else(garbage):
    """Arbitrary bytes raise DecryptionError, not IndexError or ValueError."""
    with pytest.raises(DecryptionError):
        KEYRING.decrypt(garbage, **PLACE)


def test_bytes_that_are_not_utf8_or_json_fail_loudly_as_text_or_json():
    """decrypt_text and decrypt_json refuse content of the wrong kind with DecryptionError."""
    with pytest.raises(DecryptionError, match="UTF-8"):
        KEYRING.decrypt_text(KEYRING.encrypt(b"\xff\xfe", **PLACE), **PLACE)
    with pytest.raises(DecryptionError, match="JSON"):
        KEYRING.decrypt_json(KEYRING.encrypt_text("{not json", **PLACE), **PLACE)


def test_after_rotation_old_ciphertexts_open_and_new_ones_use_the_new_key_id():
    """A keyring with the old root as previous reads old rows; it writes under the new key id."""
    old = Keyring(ROOT)
    rotated = Keyring(OTHER_ROOT, previous=(ROOT,))
    old_sealed = old.encrypt(b"written before rotation", **PLACE)
    assert rotated.decrypt(old_sealed, **PLACE) == b"written before rotation"
    new_sealed = rotated.encrypt(b"written after", **PLACE)
    assert key_id_of(old_sealed) == old.key_id
    assert key_id_of(new_sealed) == rotated.key_id != old.key_id
    with pytest.raises(DecryptionError):
        old.decrypt(new_sealed, **PLACE)


def test_key_ids_are_stable_per_root_and_differ_between_roots():
    """The key id depends only on the root secret."""
    assert Keyring(ROOT).key_id == KEYRING.key_id
    assert Keyring(OTHER_ROOT).key_id != KEYRING.key_id
    assert re.fullmatch(r"[0-9a-f]{8}", KEYRING.key_id)


def test_a_short_or_repeated_root_is_refused():
    """Roots under 32 bytes, or the same root twice, are configuration errors."""
    with pytest.raises(ValueError, match="32 bytes"):
        Keyring(b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        Keyring(ROOT, previous=(b"short",))
    with pytest.raises(ValueError, match="twice"):
        Keyring(ROOT, previous=(ROOT,))


def test_keyring_repr_shows_no_key_material():
    """Logging a keyring reveals its key id and nothing derived from the secret."""
    text = repr(Keyring(OTHER_ROOT, previous=(ROOT,)))
    assert text == f"Keyring(key_id={Keyring(OTHER_ROOT).key_id!r}, previous=1)"
    assert ROOT.hex() not in text


# --- pseudonyms and keyed indexes --------------------------------------------------------------------


def test_pseudonym_is_stable_for_the_same_key():
    """The same user gets the same pseudonym from two keyrings built from the same root."""
    assert Keyring(ROOT).pseudonym(7_123_456_789) == KEYRING.pseudonym(7_123_456_789)
    assert re.fullmatch(r"[0-9a-f]{64}", KEYRING.pseudonym(7_123_456_789))


def test_pseudonym_depends_on_the_key_and_the_user():
    """Another root, or another user, gives another pseudonym; the id itself does not appear."""
    pseudonym = KEYRING.pseudonym(7_123_456_789)
    assert Keyring(OTHER_ROOT).pseudonym(7_123_456_789) != pseudonym
    assert KEYRING.pseudonym(7_123_456_788) != pseudonym
    assert "7123456789" not in pseudonym


def test_pseudonyms_under_every_root_lead_with_the_current_one():
    """After a rotation, pseudonyms() also yields the old pseudonym, to find old rows."""
    rotated = Keyring(OTHER_ROOT, previous=(ROOT,))
    assert rotated.pseudonyms(42) == (rotated.pseudonym(42), KEYRING.pseudonym(42))


def test_keyed_indexes_are_separate_per_purpose_and_namespace():
    """A pseudonym, a receipt lookup and blind indexes of the same text never coincide."""
    values = {
        KEYRING.pseudonym(1234567890123456),
        KEYRING.receipt_lookup("1234567890123456"),
        KEYRING.blind_index("conversations", "1234567890123456"),
        KEYRING.blind_index("user_data", "1234567890123456"),
    }
    assert len(values) == 4


def test_receipt_lookup_ignores_how_the_code_was_typed():
    """Spaces, dashes and a leading + do not change the lookup; a non-code is refused."""
    assert KEYRING.receipt_lookup("+1234-5678 9012.3456") == KEYRING.receipt_lookup("1234567890123456")
    assert Keyring(OTHER_ROOT).receipt_lookup("1234567890123456") != KEYRING.receipt_lookup(
        "1234567890123456"
    )
    with pytest.raises(ValueError, match="receipt"):
        KEYRING.receipt_lookup("12345")


# --- receipt codes -----------------------------------------------------------------------------------


def test_receipt_codes_are_16_digits_not_starting_with_zero():
    """Each code looks like a phone number: 16 ASCII digits, the first from 1 to 9."""
    for _ in range(200):
        code = new_receipt_code()
        assert re.fullmatch(r"[1-9][0-9]{15}", code)


def test_receipt_codes_look_uniformly_random():
    """Thousands of codes are all distinct and every digit turns up at a plausible rate."""
    codes = [new_receipt_code() for _ in range(2000)]
    assert len(set(codes)) == len(codes)
    counts = Counter("".join(code[1:] for code in codes))
    expected = 2000 * 15 / 10
    assert set(counts) == set("0123456789")
    assert all(abs(count - expected) < expected * 0.1 for count in counts.values())


def test_receipt_code_is_shown_in_groups_of_four():
    """format_receipt groups digits as 4-4-4-4, and accepts a code typed any way."""
    assert format_receipt("1234567890123456") == "1234 5678 9012 3456"
    assert format_receipt("+1234-5678-9012-3456") == "1234 5678 9012 3456"
    with pytest.raises(ValueError, match="receipt"):
        format_receipt("123")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("1234567890123456", "1234567890123456"),
        ("1234 5678 9012 3456", "1234567890123456"),
        ("  +1234-5678.9012 3456\n", "1234567890123456"),
        ("1234\u20135678\u20149012\u00a03456", "1234567890123456"),  # en/em dash, no-break space
        ("\u0e51\u0e52\u0e53\u0e54 5678 9012 3456", "1234567890123456"),  # Thai digits
        ("\u1041\u1042\u1043\u1044567890123456", "1234567890123456"),  # Myanmar digits
        ("\uff11\uff12\uff13\uff14567890123456", "1234567890123456"),  # full-width digits
        ("123456789012345", None),
        ("12345678901234567", None),
        ("1234 5678 9012 345a", None),
        ("1234+5678901234567", None),
        ("++1234567890123456", None),
        ("", None),
        ("¹234567890123456", None),  # a superscript is a digit but not a decimal
    ],
)
def test_normalise_receipt_accepts_how_people_type_a_number(typed, expected):
    """Separators, a leading + and digits of other scripts are accepted; anything else is not a code."""
    assert normalise_receipt(typed) == expected


@given(text=st.text())
def test_normalise_receipt_never_raises_and_returns_16_ascii_digits_or_none(text):
    """Any text gives either None or exactly 16 ASCII digits."""
    result = normalise_receipt(text)
    assert result is None or re.fullmatch(r"[0-9]{16}", result)


@given(code=st.from_regex(r"[1-9][0-9]{15}", fullmatch=True))
def test_a_formatted_receipt_normalises_back_to_the_code(code):
    """What the reporter is shown is what they can type back."""
    assert normalise_receipt(format_receipt(code)) == code


def test_receipt_hash_verifies_the_right_code_only():
    """verify_receipt accepts the code (however typed) and rejects any other."""
    code = "4821093756102938"
    stored = hash_receipt(code)
    assert verify_receipt(code, stored)
    assert verify_receipt("4821 0937 5610 2938", stored)
    assert not verify_receipt("4821093756102939", stored)
    assert not verify_receipt("not a code", stored)


def test_receipt_hash_is_salted_scrypt_in_the_documented_format():
    """Two hashes of one code differ (random salt) and name scrypt's cost parameters."""
    first, second = hash_receipt("4821093756102938"), hash_receipt("4821093756102938")
    assert first != second
    assert re.fullmatch(r"scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}", first)
    assert "4821093756102938" not in first


def test_hashing_something_that_is_not_a_receipt_code_is_refused():
    """hash_receipt refuses a non-code rather than storing a hash nobody can match."""
    with pytest.raises(ValueError, match="receipt"):
        hash_receipt("hello")


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "garbage",
        "scrypt$16384$8$1$c2FsdA==",
        "bcrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaGhhc2g=",
        "scrypt$16383$8$1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaGhhc2g=",  # n not a power of 2
        "scrypt$1048576$8$1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaGhhc2g=",  # too costly
        "scrypt$16384$0$1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaGhhc2g=",
        "scrypt$16384$8$1$***$aGFzaGhhc2hoYXNoaGFzaGhhc2g=",
        "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA==$c2hvcnQ=",  # hash too short
        "scrypt$-16384$8$1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaGhhc2g=",
        "scrypt$１６３８４$8$1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaGhhc2g=",
    ],
)
def test_a_malformed_stored_hash_never_verifies(stored):
    """A corrupt or hostile stored value gives False, never an exception or a huge allocation."""
    assert verify_receipt("4821093756102938", stored) is False


# --- case ids ----------------------------------------------------------------------------------------


def test_case_ids_are_short_unambiguous_and_random():
    """Ids look like K7MX-Q9PT, avoid 0/O/1/I/L, and do not repeat over thousands of draws."""
    ids = [new_case_id() for _ in range(5000)]
    assert all(re.fullmatch(r"[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}", case_id) for case_id in ids)
    assert len(set(ids)) == len(ids)
    assert not set("0O1IL") & set(CASE_ID_ALPHABET)
    assert set("".join(ids).replace("-", "")) == set(CASE_ID_ALPHABET)


def test_a_typed_case_id_is_normalised():
    """Lower case, spaces and a missing dash are forgiven; other characters are not."""
    assert normalise_case_id(" k7mx q9pt ") == "K7MX-Q9PT"
    assert normalise_case_id("K7MXQ9PT") == "K7MX-Q9PT"
    assert normalise_case_id("K7MX-Q9P0") is None
    assert normalise_case_id("K7MX-Q9P") is None
