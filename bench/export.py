"""Benchmark: `beacon export` over synthetic databases of 100,000 and 1,000,000 cases.

Each export runs in a fresh process through the real command (`python -m bot export`: a read-only snapshot
read in keyset batches, ``write_export``, ``atomic_output``, age encryption, the audit entry), so its
seconds include starting Python and its peak RSS is that export's alone (the child reports its VmHWM at
exit, see ``_CHILD``). Memory must not grow with the number of cases: the summary compares the peak at the
largest size with the smallest.

The synthetic databases skip the intake path (``CaseStore.create_case`` hashes a receipt with scrypt per
case): the schema comes from ``storage.migrations.migrate``, the rows from ``sqlite3`` ``executemany``, one
transaction per 50,000 cases, and the free text is encrypted with a fixed bench key exactly as
``storage/cases.py`` does (AAD: table, column, row id), so the full level decrypts it. They are cached in
``--workdir`` (by default ``beacon-bench-export`` in the system's temporary folder; a 1M database takes
about 1.2 GB) so re-runs start at once; each export adds its audit entry to them, as a real one would.

    .venv/bin/python bench/export.py                 # 100,000 and 1,000,000 cases (make bench-export)
    .venv/bin/python bench/export.py --quick         # 20,000 cases only, a smoke run
    .venv/bin/python bench/export.py --sizes 100000 --workdir /var/tmp/beacon-bench
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import hashlib
import itertools
import json
import os
import platform
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

import pyrage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.crypto import CASE_ID_ALPHABET, Keyring
from bot.domain.gazetteer import load_gazetteer
from bot.domain.models import (
    AgeBand,
    CaseStatus,
    Condition,
    ContactPreference,
    PeopleCount,
    Possession,
    Priority,
    Reason,
    ReporterType,
    Sex,
)
from bot.domain.workflow import ClosingReason
from storage.db import open_database
from storage.migrations import migrate
from storage.timestamps import to_db_time

REPO = Path(__file__).resolve().parents[1]
GENERATOR_VERSION = 1  # bump when the synthetic data changes: cached databases are keyed by it
BENCH_KEY = hashlib.sha256(b"beacon bench/export: not a secret").digest()
TRANSACTION_ROWS = 50_000
START = datetime(2025, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 548 * 86_400  # 18 months
END = START + timedelta(seconds=SPAN_SECONDS)  # the newest synthetic case (2026-07-03)
QUICK_SIZES = (20_000,)
DEFAULT_SIZES = "100000,1000000"
XLSX_BUDGET_SECONDS = 180.0

T = TypeVar("T")


class Weighted(Generic[T]):
    """Values drawn with fixed weights (``random.choices`` without rebuilding the cumulative table)."""

    def __init__(self, weighted: Mapping[T, float]) -> None:
        self.values = list(weighted)
        self.cumulative = list(itertools.accumulate(weighted.values()))
        self.total = self.cumulative[-1]

    def pick(self, rng: random.Random) -> T:
        return self.values[bisect.bisect(self.cumulative, rng.random() * self.total)]


# --- the synthetic population ---------------------------------------------------------------------------

# Areas by how often they come up (Zipf-like): the big compound hubs first, then the gazetteer's order.
_HUBS = (
    "kh-preah-sihanouk",
    "mm-myawaddy",
    "mm-shwe-kokko",
    "kh-phnom-penh",
    "la-golden-triangle-sez",
    "mm-kk-park",
    "ph-metro-manila",
    "kh-bavet",
    "kh-poipet",
    "mm-laukkaing",
)
NATIONALITY = Weighted(
    {"CN": 20, "VN": 15, "ID": 12, "PH": 8, "TH": 7, "IN": 6, "MY": 5, "MM": 4, "KH": 3, "LK": 3, "TW": 3}
    | {"NP": 2, "BD": 2, "PK": 2, "LA": 2, "KR": 2, "ET": 2, "KE": 2, "JP": 1, "UG": 1, "NG": 1, "BR": 1}
)
NATIONALITY_COUNT = Weighted({0: 2, 1: 60, 2: 28, 3: 10})
REPORTER = Weighted[str | None](
    {ReporterType.SELF.value: 35, ReporterType.RELATIVE.value: 45, ReporterType.WITNESS.value: 15, None: 5}
)
AGE = Weighted[str | None](
    {
        AgeBand.UNDER_18.value: 4,
        AgeBand.FROM_18_TO_24.value: 30,
        AgeBand.FROM_25_TO_34.value: 35,
        AgeBand.FROM_35_TO_49.value: 15,
        AgeBand.OVER_50.value: 3,
        AgeBand.UNKNOWN.value: 8,
        None: 5,
    }
)
SEX = Weighted[str | None](
    {Sex.FEMALE.value: 30, Sex.MALE.value: 55, Sex.OTHER.value: 2, Sex.UNKNOWN.value: 8, None: 5}
)
DANGER = Weighted[int | None]({1: 25, 0: 60, None: 15})
PASSPORT = Weighted[str | None](
    {Possession.TAKEN.value: 45, Possession.KEPT.value: 20, Possession.UNKNOWN.value: 25, None: 10}
)
PHONE = Weighted[str | None](
    {Possession.TAKEN.value: 30, Possession.KEPT.value: 45, Possession.UNKNOWN.value: 15, None: 10}
)
PEOPLE = Weighted[str | None](
    {
        PeopleCount.ONE.value: 20,
        PeopleCount.FEW.value: 25,
        PeopleCount.SEVERAL.value: 25,
        PeopleCount.MANY.value: 15,
        PeopleCount.HUNDREDS.value: 8,
        PeopleCount.UNKNOWN.value: 5,
        None: 2,
    }
)
CONTACT = Weighted[str | None](
    {
        ContactPreference.YES.value: 55,
        ContactPreference.ON_CHECK_IN.value: 30,
        ContactPreference.NO.value: 12,
        None: 3,
    }
)
LANGUAGE = Weighted(
    {"en": 30, "zh-hans": 18, "vi": 12, "id": 10, "th": 6, "km": 4, "fil": 4, "my": 3, "ms": 3, "hi": 2}
    | {"ko": 2, "ja": 1, "ne": 1, "si": 1, "bn": 1, "sw": 1, "am": 1}
)
CONDITION = Weighted(
    {Condition.FORCED_SCAMMING: 30, Condition.LOCKED_IN: 25, Condition.WAGES_WITHHELD: 15}
    | {Condition.THREATS: 15, Condition.VIOLENCE: 12, Condition.DEBT_OR_RANSOM: 12, Condition.DECEIVED: 14}
    | {Condition.LONG_HOURS: 10, Condition.NO_FOOD_OR_CARE: 5, Condition.SEXUAL_ABUSE: 3}
    | {Condition.SOLD_OR_MOVED: 4, Condition.CHILDREN_PRESENT: 1}
)
CONDITION_COUNT = Weighted({1: 35, 2: 35, 3: 20, 4: 10})
CONDITION_REASON = {
    Condition.VIOLENCE: Reason.VIOLENCE,
    Condition.SEXUAL_ABUSE: Reason.SEXUAL_ABUSE,
    Condition.LOCKED_IN: Reason.CONFINEMENT,
    Condition.THREATS: Reason.THREATS,
    Condition.DEBT_OR_RANSOM: Reason.DEBT_OR_RANSOM,
    Condition.FORCED_SCAMMING: Reason.FORCED_CRIMINALITY,
    Condition.NO_FOOD_OR_CARE: Reason.DEPRIVATION,
    Condition.WAGES_WITHHELD: Reason.WAGES_WITHHELD,
    Condition.LONG_HOURS: Reason.EXCESSIVE_HOURS,
    Condition.DECEIVED: Reason.DECEPTION,
    Condition.SOLD_OR_MOVED: Reason.SOLD_OR_MOVED,
    Condition.CHILDREN_PRESENT: Reason.MINORS_PRESENT,
}
CLOSING = Weighted(
    {ClosingReason.RESCUED.value: 20, ClosingReason.ESCAPED.value: 10, ClosingReason.DUPLICATE.value: 25}
    | {ClosingReason.UNREACHABLE.value: 30, ClosingReason.FALSE_REPORT.value: 10}
)
TAGS = ("embassy-vn", "embassy-id", "embassy-cn", "police", "ngo-referral", "follow-up", "press")
STAFF = [(1000 + n, "coordinator", name) for n, name in enumerate(("An", "Bopha", "Chen", "Dara", "Eka"))]
STAFF += [(1010, "admin", "Farah"), (1011, "analyst", "Gita")]

_SENTENCES = (
    "They took my brother's passport when he arrived and say he owes {n},000 dollars.",
    "We answered a job advert for customer service in Bangkok but were driven across the border at night.",
    "About {n} people work on the {f}th floor, the guards have guns and nobody may leave the compound.",
    "He has to scam people on Facebook and WeChat for {h} hours a day; if he misses a target they beat him.",
    "My sister sent a voice message on the {d}th, crying; she said they moved her to another building.",
    "The company says we can go home only if our families pay a ransom of {n},000 USD.",
    "Em trai tôi bị giữ ở đây {n} tháng, họ đánh nếu không đủ chỉ tiêu.",
    "我们被骗来这里做网络诈骗，护照被收走了，每天工作{h}个小时。",
    "Adik saya dijanjikan pekerjaan di Thailand tetapi sekarang dikurung di gedung {f}.",
    "Some of the workers are children, maybe {n} of them, they sleep in the same room as us.",
    "There is no doctor; one man was sick for {d} days and they still made him work.",
    "They sold two of my friends to another company last week.",
    "The compound is next to a casino with a blue roof and a big gate with a red sign.",
    "We get food once a day and they take our wages for 'fines'.",
)
_LANDMARKS = ("casino", "blue gate", "river pier", "petrol station", "pagoda", "water tower", "KTV bar")


def _details(rng: random.Random) -> str:
    count = rng.choice((1, 2, 2, 3, 3, 4, 5, 7))
    return " ".join(
        rng.choice(_SENTENCES).format(n=rng.randint(2, 90), f=rng.randint(2, 14), h=rng.randint(12, 18),
                                      d=rng.randint(1, 28))
        for _ in range(count)
    )  # fmt: skip


def _place_details(rng: random.Random) -> str:
    return (
        f"Building {rng.choice('ABCDEFGH')}{rng.randint(1, 30)}, floor {rng.randint(1, 16)}, "
        f"near the {rng.choice(_LANDMARKS)}"
    )


_ID_SPACE = len(CASE_ID_ALPHABET) ** 8
_ID_STEP = 0x5DEECE66D  # not a multiple of 31, so index -> id is a bijection of the id space
_ID_OFFSET = 0x2545F4914F6CDD1D % _ID_SPACE
assert _ID_STEP % len(CASE_ID_ALPHABET) != 0


def case_id(index: int) -> str:
    """A unique id shaped like Beacon's (``K7MX-Q9PT``) for the ``index``-th case, spread over the space."""
    n = (index * _ID_STEP + _ID_OFFSET) % _ID_SPACE
    symbols = []
    for _ in range(8):
        n, remainder = divmod(n, len(CASE_ID_ALPHABET))
        symbols.append(CASE_ID_ALPHABET[remainder])
    return f"{''.join(symbols[:4])}-{''.join(symbols[4:])}"


@dataclass
class Chunk:
    """The rows of one transaction."""

    cases: list[tuple[Any, ...]]
    conditions: list[tuple[str, str]]
    secrets: list[tuple[str, str, bytes]]
    tags: list[tuple[str, str]]
    links: list[tuple[str, str]]
    additions: list[tuple[str, str, str, bytes]]
    notes: list[tuple[str, str, int, str, bytes]]
    media: list[tuple[str, str, str, str, str, bytes]]


_INSERTS = {
    "cases": "INSERT INTO cases (id, created_at, updated_at, status, priority, reasons, score, "
    "corroborating_cases, rules_version, reporter_type, immediate_danger, fast_track, place_unknown, "
    "country, area_id, approx_latitude, approx_longitude, passport, phone, people, nationalities, contact, "
    "language, victim_age_band, victim_sex, victim_nationality, quarantined, withdrawn_at, assignee_id, "
    f"closing_reason) VALUES ({', '.join('?' * 30)})",
    "conditions": "INSERT INTO case_conditions (case_id, condition) VALUES (?, ?)",
    "secrets": "INSERT INTO case_secrets (case_id, field, ciphertext) VALUES (?, ?, ?)",
    "tags": "INSERT INTO case_tags (case_id, tag) VALUES (?, ?)",
    "links": "INSERT INTO case_links (case_id, linked_case_id) VALUES (?, ?)",
    "additions": "INSERT INTO case_additions (id, case_id, created_at, ciphertext) VALUES (?, ?, ?, ?)",
    "notes": "INSERT INTO case_notes (id, case_id, author_id, created_at, ciphertext) VALUES (?, ?, ?, ?, ?)",
    "media": "INSERT INTO case_media (id, case_id, kind, mime_type, created_at, ciphertext) "
    "VALUES (?, ?, ?, ?, ?, ?)",
}


@dataclass(frozen=True)
class Profile:
    """How the synthetic cases spread over time. ``EXPORT``: any size over the same 18 months, most cases
    still open (the load an export must carry). ``HISTORY`` (bench/growth.py): a steady stream of reports
    (10,000 in 30 days) ending on the same day, so a bigger database is a longer history, and cases older
    than ``settle_days`` are nearly all closed (the open backlog stays about the same size)."""

    name: str
    cases_per_day: float | None = None  # None: the size spread over SPAN_SECONDS
    settle_days: float | None = None

    def span_seconds(self, size: int) -> float:
        return SPAN_SECONDS if self.cases_per_day is None else size / self.cases_per_day * 86_400


EXPORT = Profile("export")
HISTORY = Profile("history", cases_per_day=10_000 / 30, settle_days=90)
SETTLED_CLOSED = 0.99  # share of the cases older than settle_days that are closed


class Population:
    """Generates the cases of a database of ``size`` cases, ``TRANSACTION_ROWS`` at a time, reproducibly."""

    def __init__(self, size: int, keyring: Keyring, profile: Profile = EXPORT) -> None:
        self.size = size
        self.keyring = keyring
        self.profile = profile
        self.span = profile.span_seconds(size)
        self.start = START if profile is EXPORT else END - timedelta(seconds=self.span)
        gazetteer = load_gazetteer()
        areas = {
            area.id: area for country in gazetteer.countries() for area in gazetteer.areas_in(country.code)
        }
        order = [*_HUBS, *(area_id for area_id in areas if area_id not in _HUBS)]
        self.areas = areas
        self.area = Weighted({area_id: 1 / (rank + 1) ** 0.9 for rank, area_id in enumerate(order)})

    def chunk(self, start: int, stop: int) -> Chunk:
        rng = random.Random(self.size * 7919 + start)
        out = Chunk([], [], [], [], [], [], [], [])
        for index in range(start, stop):
            self._case(rng, index, out)
        return out

    def _encrypt(self, text: str, table: str, column: str, row_id: str) -> bytes:
        return self.keyring.encrypt_text(text, table=table, column=column, row_id=row_id)

    def _case(self, rng: random.Random, index: int, out: Chunk) -> None:
        cid = case_id(index)
        age = 1 - index / self.size  # 1: the oldest case, 0: the newest
        created = self.start + timedelta(seconds=(index + rng.random()) * self.span / self.size)
        created_text = to_db_time(created)

        conditions = {CONDITION.pick(rng) for _ in range(CONDITION_COUNT.pick(rng))}
        danger = DANGER.pick(rng)
        passport = PASSPORT.pick(rng)
        phone = PHONE.pick(rng)
        reasons = [CONDITION_REASON[c] for c in sorted(conditions)]
        if danger:
            reasons.insert(0, Reason.IMMEDIATE_DANGER)
        if passport == Possession.TAKEN.value:
            reasons.append(Reason.DOCUMENTS_WITHHELD)
        if phone == Possession.TAKEN.value:
            reasons.append(Reason.PHONE_TAKEN)
        severe = conditions & {Condition.VIOLENCE, Condition.SEXUAL_ABUSE, Condition.LOCKED_IN}
        if danger and severe:
            priority = Priority.P1 if rng.random() < 0.8 else Priority.P2
        elif danger or severe:
            priority = Priority.P2 if rng.random() < 0.7 else Priority.P3
        else:
            priority = Priority.P3 if rng.random() < 0.6 else Priority.P4

        # Older cases are more often further along the workflow.
        weights = (0.05 + 0.45 * (1 - age), 0.25, 0.2, 0.05 + 0.2 * age, 0.03 + 0.2 * age)
        status = rng.choices(list(CaseStatus), weights)[0]
        settle = self.profile.settle_days
        if settle is not None and END - created > timedelta(days=settle) and rng.random() < SETTLED_CLOSED:
            status = CaseStatus.CLOSED
        closing = CLOSING.pick(rng) if status is CaseStatus.CLOSED else None
        withdrawn = rng.random() < 0.004
        quarantined = int(rng.random() < 0.006)
        updated = created + timedelta(hours=rng.random() * 24 * 30 * (status is not CaseStatus.NEW))
        withdrawn_at = None
        if withdrawn:
            status, closing = CaseStatus.CLOSED, ClosingReason.WITHDRAWN.value
            withdrawn_at = to_db_time(created + timedelta(hours=1 + rng.random() * 48))
        assignee = rng.choice(STAFF[:5])[0] if status is not CaseStatus.NEW and rng.random() < 0.9 else None

        place_unknown = rng.random() < 0.06
        area_id = country = None
        if not place_unknown:
            area_id = self.area.pick(rng)
            country = self.areas[area_id].country
            if rng.random() < 0.04:
                area_id = None  # the country only
        latitude = longitude = None
        if area_id is not None and rng.random() < 0.4:
            area = self.areas[area_id]
            latitude = area.latitude + rng.uniform(-0.05, 0.05)
            longitude = area.longitude + rng.uniform(-0.05, 0.05)
        nationalities = list(dict.fromkeys(NATIONALITY.pick(rng) for _ in range(NATIONALITY_COUNT.pick(rng))))
        reporter = REPORTER.pick(rng)
        share = {"self": 0.7, "relative": 0.9}.get(reporter or "", 0.3)
        victim_nationality = nationalities[0] if nationalities and rng.random() < share else None
        links = sorted({case_id(index - rng.randint(1, 2000)) for _ in range(rng.choice((1, 1, 2)))})
        links = links if index > 2000 and rng.random() < 0.1 else []

        out.cases.append(
            (
                cid,
                created_text,
                to_db_time(updated),
                status.value,
                int(priority),
                json.dumps([reason.value for reason in reasons]),
                {1: 90, 2: 60, 3: 30, 4: 10}[priority] + rng.randint(0, 9),
                len(links),
                "2026.1",
                reporter,
                danger,
                int(bool(danger) and rng.random() < 0.12),
                int(place_unknown),
                country,
                area_id,
                None if latitude is None else round(latitude, 2),
                None if longitude is None else round(longitude, 2),
                passport,
                phone,
                PEOPLE.pick(rng),
                json.dumps(nationalities),
                CONTACT.pick(rng),
                LANGUAGE.pick(rng),
                AGE.pick(rng),
                SEX.pick(rng),
                victim_nationality,
                quarantined,
                withdrawn_at,
                assignee,
                closing,
            )
        )
        out.conditions += [(cid, condition.value) for condition in sorted(conditions)]
        secrets = {} if withdrawn else {"details": _details(rng), "place_details": _place_details(rng)}
        if latitude is not None and longitude is not None:
            secrets |= {"latitude": repr(latitude), "longitude": repr(longitude)}
        out.secrets += [
            (cid, name, self._encrypt(text, "case_secrets", name, cid)) for name, text in secrets.items()
        ]
        if rng.random() < 0.08:
            out.tags += [(cid, tag) for tag in sorted(set(rng.sample(TAGS, rng.choice((1, 1, 2)))))]
        out.links += [(cid, linked) for linked in links]
        if not withdrawn and rng.random() < 0.06:
            for _ in range(rng.choice((1, 1, 2))):
                row_id = f"{rng.getrandbits(64):016x}"
                text = _details(rng)
                out.additions.append(
                    (row_id, cid, created_text, self._encrypt(text, "case_additions", "text", row_id))
                )
        if assignee is not None and rng.random() < 0.15:
            for _ in range(rng.randint(1, 3)):
                row_id = f"{rng.getrandbits(64):016x}"
                text = f"Called the embassy hotline, ticket {rng.randint(1000, 9999)}; waiting for an answer."
                out.notes.append(
                    (row_id, cid, assignee, created_text, self._encrypt(text, "case_notes", "text", row_id))
                )
        if rng.random() < 0.04:
            kind, mime = rng.choice((("photo", "image/jpeg"), ("voice", "audio/ogg")))
            out.media.append(
                (f"{rng.getrandbits(64):016x}", cid, kind, mime, created_text, rng.randbytes(64))
            )


def database_path(workdir: Path, size: int, profile: Profile = EXPORT) -> Path:
    kind = "" if profile is EXPORT else f"-{profile.name}"
    return workdir / f"cases-{size}{kind}-v{GENERATOR_VERSION}.db"


async def _create_schema(path: Path) -> None:
    conn = await open_database(path)
    try:
        await migrate(conn)
    finally:
        await conn.close()


def build_database(workdir: Path, size: int, profile: Profile = EXPORT) -> tuple[Path, float | None]:
    """The cached database of ``size`` cases, built first if missing; and the seconds building took."""
    path = database_path(workdir, size, profile)
    if path.is_file():
        return path, None
    started = time.perf_counter()
    building = path.with_suffix(".building")
    for leftover in (building, Path(f"{building}-wal"), Path(f"{building}-shm")):
        leftover.unlink(missing_ok=True)
    asyncio.run(_create_schema(building))
    population = Population(size, Keyring(BENCH_KEY), profile)
    conn = sqlite3.connect(building, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.executemany(
            "INSERT INTO staff (user_id, role, label, granted_at) VALUES (?, ?, ?, ?)",
            [(*member, to_db_time(START)) for member in STAFF],
        )
        for start in range(0, size, TRANSACTION_ROWS):
            chunk = population.chunk(start, min(size, start + TRANSACTION_ROWS))
            conn.execute("BEGIN")
            for table, sql in _INSERTS.items():
                conn.executemany(sql, getattr(chunk, table))
            conn.execute("COMMIT")
            done = min(size, start + TRANSACTION_ROWS)
            _note(f"  {building.name}: {done:,} / {size:,} cases ({time.perf_counter() - started:.0f} s)")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    os.replace(building, path)
    return path, time.perf_counter() - started


# --- running exports ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    fmt: str
    level: str
    encrypt: bool = False

    @property
    def label(self) -> str:
        return f"{self.fmt}{' + age' if self.encrypt else ''}"


MATRIX = (
    Job("csv", "partner"),
    Job("jsonl", "partner"),
    Job("csv", "public"),
    Job("geojson", "partner"),
    Job("xlsx", "partner"),
    Job("jsonl", "full", encrypt=True),
)


@dataclass
class Result:
    size: int
    job: Job
    seconds: float
    cpu: float
    peak_bytes: int
    output_bytes: int
    written: int  # as `beacon export` reports it (GeoJSON: the cases in the published areas)
    suppressed: int
    read: int
    features: int = 0  # GeoJSON: published areas


@dataclass(frozen=True)
class Expected:
    total: int
    active: int
    with_details: int


def expected_counts(path: Path) -> Expected:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        total, active = conn.execute(
            "SELECT COUNT(*), SUM(withdrawn_at IS NULL AND quarantined = 0) FROM cases"
        ).fetchone()
        (with_details,) = conn.execute("SELECT COUNT(*) FROM case_secrets WHERE field = 'details'").fetchone()
    finally:
        conn.close()
    return Expected(int(total), int(active), int(with_details))


def _environment(database: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("BEACON_")}
    env |= {
        "BEACON_DATABASE": str(database),
        "BEACON_SECRET_KEY": base64.b64encode(BENCH_KEY).decode("ascii"),
        "BEACON_BOT_TOKEN": "123:bench",
        "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH")))),
    }
    return env


# ``python -m bot ARGS`` (bot/__main__.py), then the peak RSS of this process image, read at exit. Not
# ru_maxrss (of wait4 or RUSAGE_SELF): Linux carries the high-water mark over exec, so a child's ru_maxrss
# is at least the RSS of the parent it was forked from, however little the child itself uses.
_CHILD = """
import sys
from bot.cli import main
status = main(sys.argv[1:])
try:
    with open("/proc/self/status") as lines:
        print("bench-peak-kb", next(line.split()[1] for line in lines if line.startswith("VmHWM:")),
              file=sys.stderr)
except OSError:
    pass
sys.exit(status)
"""
_PEAK = re.compile(r"^bench-peak-kb (\d+)$", re.MULTILINE)


def run_child(args: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int, str]:
    """Run ``beacon <args>`` in a fresh process; return wall seconds, CPU seconds, peak RSS (bytes) and
    its standard error."""
    with tempfile.TemporaryFile(dir=cwd) as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, *args], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        text = errors.read().decode("utf-8", "replace")
    if process.returncode != 0:
        raise RuntimeError(f"beacon {' '.join(args)} failed ({process.returncode}):\n{text}")
    peak = _PEAK.search(text)  # without /proc, fall back to ru_maxrss (an upper bound, see _CHILD)
    return (
        seconds,
        usage.ru_utime + usage.ru_stime,
        int(peak.group(1)) * 1024 if peak else usage.ru_maxrss * 1024,
        text,
    )


_EXPORTED = re.compile(r"exported (\d+) (?:case|area)")
_SUPPRESSED = re.compile(r"; (\d+) suppressed")


def run_export(
    database: Path, size: int, job: Job, outdir: Path, expected: Expected, identity: Any, check: bool
) -> Result:
    output = outdir / f"{size}-{job.level}.{job.fmt}{'.age' if job.encrypt else ''}"
    args = ["export", "--format", job.fmt, "--level", job.level, "--output", str(output)]
    if job.encrypt:
        args += ["--encrypt-to", str(identity.to_public())]
    seconds, cpu, peak, stderr = run_child(args, _environment(database), outdir)
    written_match, suppressed_match = _EXPORTED.search(stderr), _SUPPRESSED.search(stderr)
    features = 0
    try:
        output_bytes = output.stat().st_size
        if check and job.encrypt:
            check_decrypts(output, identity, expected)
        if job.fmt == "geojson":
            features = len(json.loads(output.read_bytes())["features"])
    finally:
        output.unlink(missing_ok=True)
    read = expected.total if job.level == "full" else expected.active
    return Result(
        size=size,
        job=job,
        seconds=seconds,
        cpu=cpu,
        peak_bytes=peak,
        output_bytes=output_bytes,
        written=int(written_match.group(1)) if written_match else -1,
        suppressed=int(suppressed_match.group(1)) if suppressed_match else 0,
        read=read,
        features=features,
    )


class _LineCheck:
    """Receives the decrypted JSON Lines and counts records and decrypted free texts."""

    def __init__(self) -> None:
        self.pending = b""
        self.records = 0
        self.details = 0

    def write(self, data: bytes) -> int:
        lines = (self.pending + bytes(data)).split(b"\n")
        self.pending = lines.pop()
        for line in lines:
            record = json.loads(line)
            self.records += 1
            self.details += bool(record["details"])
        return len(data)

    def flush(self) -> None:
        """pyrage may flush."""


def check_decrypts(output: Path, identity: Any, expected: Expected) -> None:
    """The age file opens with the bench identity and holds every case, with its decrypted details."""
    sink = _LineCheck()
    with output.open("rb") as source:
        pyrage.decrypt_io(source, sink, [identity])
    if sink.pending or sink.records != expected.total or sink.details != expected.with_details:
        raise RuntimeError(
            f"{output.name}: decrypted {sink.records} records ({sink.details} with details), expected "
            f"{expected.total} ({expected.with_details} with details)"
        )
    _note(f"  {output.name}: decrypts to {sink.records:,} records, {sink.details:,} with decrypted details")


# --- report ---------------------------------------------------------------------------------------------


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _mb(size: int) -> str:
    return f"{size / 1e6:,.0f}" if size >= 10e6 else f"{size / 1e6:.1f}"


def print_report(
    results: list[Result], skipped: list[str], baseline: tuple[float, int], total: float
) -> None:
    print(f"Machine: {os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()},")
    print(f"SQLite {sqlite3.sqlite_version}, {platform.system()} {platform.release()}")
    print(
        f"Starting `beacon export` (interpreter and imports, --list-areas): {baseline[0]:.2f} s, "
        f"peak RSS {baseline[1] / 1e6:.0f} MB; included in every row below."
    )
    print()
    print("| size | format | level | rows written | seconds | CPU s | rows/s | peak RSS MB | output MB |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        written = f"{r.written:,}" + (f" ({r.suppressed:,} suppressed)" if r.suppressed else "")
        if r.job.fmt == "geojson":
            written = f"{r.features} areas ({r.written:,} cases)"
        print(
            f"| {r.size:,} | {r.job.label} | {r.job.level} | {written} | {r.seconds:.1f} | {r.cpu:.1f} | "
            f"{r.read / r.seconds:,.0f} | {r.peak_bytes / 1e6:.0f} | {_mb(r.output_bytes)} |"
        )
    print()
    print("rows/s: cases read per wall-clock second (active cases below the full level, every case at it).")
    for line in skipped:
        print(line)
    print(f"Whole run (databases included): {total / 60:.1f} minutes.")
    sizes = sorted({r.size for r in results})
    if len(sizes) < 2:
        return
    small, large = sizes[0], sizes[-1]
    print()
    print(
        f"Peak RSS at {large:,} cases / at {small:,} cases (constant memory: close to 1.0); in brackets, the"
    )
    print(f"same for what the export adds to the {baseline[1] / 1e6:.0f} MB of the interpreter and imports:")
    peaks = {(r.size, r.job): r.peak_bytes for r in results}
    for job in MATRIX:
        if (small, job) in peaks and (large, job) in peaks:
            big, little = peaks[large, job], peaks[small, job]
            added = f"{(big - baseline[1]) / 1e6:.0f} / {(little - baseline[1]) / 1e6:.0f} MB"
            print(
                f"- {job.label} {job.level}: {big / 1e6:.0f} / {little / 1e6:.0f} MB = {big / little:.2f} "
                f"({added})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="case counts, comma-separated")
    parser.add_argument("--quick", action="store_true", help="20,000 cases only (a smoke run)")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "beacon-bench-export",
        help="where the generated databases are cached (default: %(default)s)",
    )
    parser.add_argument(
        "--xlsx-budget",
        type=float,
        default=XLSX_BUDGET_SECONDS,
        help="run XLSX past the smallest size only if its linear estimate is under this many seconds",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    sizes = sorted(QUICK_SIZES if args.quick else {int(size) for size in args.sizes.split(",")})
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)

    databases: dict[int, Path] = {}
    for size in sizes:
        databases[size], took = build_database(workdir, size)
        built = f"built in {took:.0f} s" if took is not None else "cached"
        megabytes = databases[size].stat().st_size / 1e6
        _note(f"database of {size:,} cases: {databases[size]} ({megabytes:,.0f} MB, {built})")

    identity = pyrage.x25519.Identity.generate()
    outdir = Path(tempfile.mkdtemp(prefix="exports-", dir=workdir))
    seconds, _, peak, _ = run_child(["export", "--list-areas"], _environment(databases[sizes[0]]), outdir)
    results: list[Result] = []
    skipped: list[str] = []
    xlsx_rate: float | None = None  # seconds per case at the smallest size
    try:
        for size in sizes:
            expected = expected_counts(databases[size])
            for job in MATRIX:
                if job.fmt == "xlsx" and xlsx_rate is not None and xlsx_rate * size > args.xlsx_budget:
                    skipped.append(
                        f"XLSX at {size:,} cases not run: about {xlsx_rate * size:.0f} s estimated "
                        f"(linear from {sizes[0]:,}), over the {args.xlsx_budget:.0f} s budget."
                    )
                    continue
                _note(f"{size:,} cases: {job.label} {job.level} ...")
                result = run_export(
                    databases[size], size, job, outdir, expected, identity, check=size == sizes[0]
                )
                _note(f"  {result.seconds:.1f} s, peak RSS {result.peak_bytes / 1e6:.0f} MB")
                results.append(result)
                if job.fmt == "xlsx" and xlsx_rate is None:
                    xlsx_rate = result.seconds / size
    finally:
        for leftover in outdir.iterdir():
            leftover.unlink()
        outdir.rmdir()
    print_report(results, skipped, (seconds, peak), time.perf_counter() - started)


if __name__ == "__main__":
    main()
