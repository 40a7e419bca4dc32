"""Where an export's bytes go: a file that appears only when complete, age encryption on the way, or a
size-capped memory buffer (the bot's /export, bounded by Telegram's upload limit).
"""

from __future__ import annotations

import io
import os
import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, TypeAlias

import pyrage

__all__ = [
    "AgeEncryptor",
    "CappedBuffer",
    "ExportError",
    "ExportTooLarge",
    "RecipientError",
    "atomic_output",
    "parse_recipients",
]

Recipient: TypeAlias = pyrage.x25519.Recipient | pyrage.ssh.Recipient


class ExportError(Exception):
    """An export cannot be made; the message is one line for the person who asked."""


class ExportTooLarge(ExportError):
    """The export is larger than the buffer allows."""


class RecipientError(ExportError):
    """An age recipient cannot be read."""


def _parse_one(text: str, origin: str) -> Recipient:
    try:
        if text.startswith("age1"):
            return pyrage.x25519.Recipient.from_str(text)
        if text.startswith(("ssh-ed25519 ", "ssh-rsa ")):
            return pyrage.ssh.Recipient.from_str(text)
    except pyrage.RecipientError as exc:
        raise RecipientError(f"cannot read recipient {origin}: {exc}") from None
    raise RecipientError(f"cannot read recipient {origin}: not an age (age1...) or SSH public key")


def parse_recipients(values: Sequence[str]) -> list[Recipient]:
    """Read age recipients: each value is a recipient (``age1...``, ``ssh-ed25519 ...``) or a file of them
    (one per line, ``#`` comments allowed), like ``age -r`` / ``age -R``. Raises ``RecipientError``."""
    recipients: list[Recipient] = []
    for value in values:
        value = value.strip()
        if value.startswith(("age1", "ssh-")):
            recipients.append(_parse_one(value, repr(value[:24] + "...")))
            continue
        path = Path(value)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise RecipientError(f"cannot read recipients file {value}: {reason}") from None
        found = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        if not found:
            raise RecipientError(f"cannot read recipients file {value}: it holds no recipient")
        recipients.extend(_parse_one(line, f"in {value}") for line in found)
    return recipients


class CappedBuffer(io.RawIOBase):
    """Bytes in memory, refusing to grow past ``limit``."""

    def __init__(self, limit: int) -> None:
        self._buffer = io.BytesIO()
        self._limit = limit

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        size = len(data)
        if self._buffer.tell() + size > self._limit:
            raise ExportTooLarge(f"the export is larger than {self._limit:,} bytes")
        self._buffer.write(data)
        return size

    def getvalue(self) -> bytes:
        return self._buffer.getvalue()


class AgeEncryptor(io.RawIOBase):
    """A write-only stream that age-encrypts everything written to it into ``destination``.

    pyrage reads the plaintext from a pipe in a thread of its own and writes the ciphertext as it goes:
    the clear text never exists as a whole, in memory or on disk. ``close()`` finishes the file and
    raises ``ExportError`` if encrypting failed (e.g. the disk filled up).
    """

    def __init__(self, destination: IO[bytes] | io.RawIOBase, recipients: Sequence[Recipient]) -> None:
        if not recipients:
            raise RecipientError("encrypting needs at least one recipient")
        read_fd, write_fd = os.pipe()
        self._reader = os.fdopen(read_fd, "rb", buffering=0)
        self._writer = os.fdopen(write_fd, "wb", buffering=0)
        self._error: BaseException | None = None
        self._destination = _Watched(destination)
        self._thread = threading.Thread(
            target=self._encrypt, args=(list(recipients),), name="age-encrypt", daemon=True
        )
        self._thread.start()

    def _encrypt(self, recipients: list[Recipient]) -> None:
        try:
            pyrage.encrypt_io(self._reader, self._destination, recipients)
        except BaseException as exc:  # reported by close(); the writer sees a broken pipe meanwhile
            self._error = exc
        finally:
            self._reader.close()

    def _failure(self) -> ExportError | None:
        """What went wrong in the encrypting thread (the destination's own error first), if anything."""
        error = self._destination.error or self._error
        if error is None:
            return None
        if isinstance(error, ExportError):
            return error
        return ExportError(f"encrypting failed: {error}")

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            written = self._writer.write(data)
        except BrokenPipeError:
            self._thread.join()
            raise self._failure() or ExportError("encrypting failed") from None
        return len(data) if written is None else written

    def close(self) -> None:
        if self.closed:
            return
        with suppress(BrokenPipeError):
            self._writer.close()
        self._thread.join()
        super().close()
        failure = self._failure()
        if failure is not None:
            raise failure


class _Watched:
    """Passes pyrage's writes on to ``destination`` and keeps the first error: pyrage drops an error of
    its last write (at the end of the file), which would leave a truncated file reported as complete."""

    def __init__(self, destination: IO[bytes] | io.RawIOBase) -> None:
        self._destination = destination
        self.error: BaseException | None = None

    def write(self, data: bytes) -> int | None:
        try:
            return self._destination.write(data)
        except BaseException as exc:
            self.error = self.error or exc
            raise


@contextmanager
def atomic_output(path: Path) -> Iterator[IO[bytes]]:
    """A new file at ``path`` (mode 0600) that appears only if the block finishes; else nothing is left.

    The bytes go to a hidden temporary file beside ``path``, which is synced and renamed over ``path`` at
    the end. Raises ``ExportError`` (one line) if the folder cannot be written.
    """
    folder = path.parent if str(path.parent) else Path()
    if path.is_dir():
        raise ExportError(f"cannot write {path}: it is a folder")
    temporary = folder / f".{path.name}.{secrets.token_hex(6)}.part"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
    handle = os.fdopen(fd, "wb", buffering=1 << 20)
    try:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        os.replace(temporary, path)
    except BaseException as exc:
        with suppress(OSError):
            handle.close()
        temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
            raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
