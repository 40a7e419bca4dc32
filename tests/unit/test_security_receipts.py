"""Receipt codes against guessing: wrong codes are rate-limited per account (the store, and so the slow
hash, is not even asked once an account is locked out), the lockout ends after its window, and a code is
checked only through the salted scrypt hash compared in constant time."""

from __future__ import annotations

import ast
import hmac
import inspect
import textwrap
from types import SimpleNamespace
from typing import Any

import pytest

from bot import crypto
from bot.services import intake as intake_module
from bot.services.intake import RECEIPT_ATTEMPTS, RECEIPT_WINDOW_SECONDS, IntakeService, TooManyAttempts
from storage.cases import CaseStore

ROOT = bytes(range(32))
CASE_ID = "K7MX-Q9PT"
GUESSER, OTHER = 7_000_000_101, 7_000_000_202


class ReceiptStore:
    """Just what `case_for_code` needs: the receipt table as storage keeps it (keyed lookup → scrypt
    hash), verified the way CaseStore does; counts how often it was asked."""

    def __init__(self, keyring: crypto.Keyring, code: str) -> None:
        self.keyring = keyring
        self.rows = {keyring.receipt_lookup(code): (CASE_ID, crypto.hash_receipt(code))}
        self.asked = 0

    async def case_by_receipt(self, code: str) -> str | None:
        self.asked += 1
        row = self.rows.get(self.keyring.receipt_lookup(code))
        if row is not None and crypto.verify_receipt(code, row[1]):
            return row[0]
        return None


class Monotonic:
    """A hand-driven monotonic clock for the service's rate limit."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Monotonic:
    """Replace the `time` module the intake service reads (only there: the event loop keeps its own)."""
    fake = Monotonic()
    monkeypatch.setattr(intake_module, "time", SimpleNamespace(monotonic=fake))
    return fake


def _service() -> tuple[IntakeService, ReceiptStore, str]:
    keyring = crypto.Keyring(ROOT)
    code = "4921 7730 1184 5562"
    store = ReceiptStore(keyring, code)
    return IntakeService(store, keyring), store, code  # type: ignore[arg-type]


def _wrong(n: int) -> str:
    return f"1111 2222 3333 {4440 + n}"


async def test_the_right_code_opens_the_case_and_does_not_count_as_a_failure(clock: Monotonic) -> None:
    """A reporter may check their report with the code as often as they like."""
    service, _store, code = _service()
    for _ in range(RECEIPT_ATTEMPTS + 3):
        assert await service.case_for_code(GUESSER, code) == CASE_ID


async def test_after_too_many_wrong_codes_even_the_right_one_is_refused_without_asking_the_store(
    clock: Monotonic,
) -> None:
    """Five wrong codes (typos, junk, digits in another script: all count) lock the account out: the
    sixth try, right or wrong, raises TooManyAttempts before the store (and its slow hash) is asked."""
    service, store, code = _service()
    typed = [_wrong(0), "not a code", "٤٤٤٤ ٥٥٥٥ ٦٦٦٦ ٧٧٧٧", _wrong(1), "+1 111 222 333 444 5"]
    assert len(typed) == RECEIPT_ATTEMPTS
    for text in typed:
        clock.now += 1
        assert await service.case_for_code(GUESSER, text) is None
    asked = store.asked
    for text in (_wrong(9), code):
        with pytest.raises(TooManyAttempts):
            await service.case_for_code(GUESSER, text)
    assert store.asked == asked, "a locked-out account still reached the slow hash"


async def test_the_limit_is_per_account_so_a_stranger_cannot_lock_a_reporter_out(clock: Monotonic) -> None:
    """By design the count is kept per account (its keyed pseudonym): one account's guesses neither
    lock out another account nor the reporter, who can still open the case with the code."""
    service, _store, code = _service()
    for n in range(RECEIPT_ATTEMPTS):
        assert await service.case_for_code(GUESSER, _wrong(n)) is None
    with pytest.raises(TooManyAttempts):
        await service.case_for_code(GUESSER, _wrong(7))
    assert await service.case_for_code(OTHER, code) == CASE_ID
    for n in range(RECEIPT_ATTEMPTS - 1):
        assert await service.case_for_code(OTHER, _wrong(n)) is None
    assert await service.case_for_code(OTHER, code) == CASE_ID, "four misses still leave a try"


async def test_the_lockout_ends_when_the_window_has_passed(clock: Monotonic) -> None:
    """Failures older than the window are forgotten one by one: a locked-out reporter can try again
    later (with the right code), and is not locked forever."""
    service, _store, code = _service()
    for n in range(RECEIPT_ATTEMPTS):
        assert await service.case_for_code(GUESSER, _wrong(n)) is None
        clock.now += 10
    with pytest.raises(TooManyAttempts):
        await service.case_for_code(GUESSER, code)
    clock.now += RECEIPT_WINDOW_SECONDS - 10 * RECEIPT_ATTEMPTS + 1  # the first failure has expired
    assert await service.case_for_code(GUESSER, _wrong(8)) is None
    with pytest.raises(TooManyAttempts):
        await service.case_for_code(GUESSER, code)
    clock.now += RECEIPT_WINDOW_SECONDS
    assert await service.case_for_code(GUESSER, code) == CASE_ID


def test_verification_compares_the_scrypt_digests_with_hmac_compare_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Right or wrong, `verify_receipt` derives the scrypt digest and hands both digests (of equal length)
    to `hmac.compare_digest`, whose answer it returns."""
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(crypto.hmac, "compare_digest", spy)
    code = crypto.new_receipt_code()
    stored = crypto.hash_receipt(code)
    wrong = ("1" if code[0] != "1" else "2") + code[1:]
    assert crypto.verify_receipt(code, stored) is True
    assert crypto.verify_receipt(wrong, stored) is False
    assert len(calls) == 2
    for actual, expected in calls:
        assert isinstance(actual, bytes)
        assert isinstance(expected, bytes)
        assert len(actual) == len(expected) == 32
    assert calls[0][0] == calls[0][1]
    assert calls[1][0] != calls[1][1]


def _function_tree(function: Any) -> ast.AST:
    return ast.parse(textwrap.dedent(inspect.getsource(function)))


def test_no_receipt_secret_is_compared_with_an_ordinary_equality() -> None:
    """Neither the verification nor the store's lookup compares with == or != (which stops at the first
    differing byte): the store finds a row by the keyed HMAC of the code and accepts it only through
    `verify_receipt`."""
    for function in (crypto.verify_receipt, CaseStore.case_by_receipt):
        operators = [
            type(op).__name__
            for node in ast.walk(_function_tree(function))
            if isinstance(node, ast.Compare)
            for op in node.ops
            if isinstance(op, ast.Eq | ast.NotEq)
        ]
        assert operators == [], f"{function.__qualname__} compares with {operators}"
    used = {
        node.id if isinstance(node, ast.Name) else node.attr
        for node in ast.walk(_function_tree(CaseStore.case_by_receipt))
        if isinstance(node, ast.Name | ast.Attribute)
    }
    assert {"receipt_lookups", "verify_receipt"} <= used
    queries = [
        node.value
        for node in ast.walk(_function_tree(CaseStore.case_by_receipt))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "FROM receipts" in node.value
    ]
    assert queries == ["SELECT case_id, hash FROM receipts WHERE lookup = ?"]
