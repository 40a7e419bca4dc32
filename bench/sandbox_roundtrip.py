"""Benchmark: /start round trips from many simulated reporters to a real Beacon bot through the sandbox.

Everything runs on loopback in one process (sandbox, bot, simulated people), so the CPU figure covers all
three. Flood limits are off: this measures Beacon and its HTTP stack, not Telegram's pacing.

    .venv/bin/python bench/sandbox_roundtrip.py --reporters 300 --concurrency 30
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import build_application, start_application, stop_application
from bot.config import load_settings
from bot.keys import generate_secret_key
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer
from sandbox.world import Limits

TOKEN = "987654321:BENCH-token"


async def one_reporter(sb: SandboxClient, bot_id: int, index: int) -> float:
    user = await sb.create_user(f"Reporter {index}", language_code=("en", "vi", "zh-hans")[index % 3])
    started = time.perf_counter()
    sent = await sb.send_text(user["id"], "/start", bot_id=bot_id)
    await sb.wait_for_message(
        user["id"], bot_id=bot_id, after_message_id=sent["message"]["message_id"], timeout=60
    )
    return time.perf_counter() - started


async def run(reporters: int, concurrency: int) -> None:
    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as scratch:
        async with (
            SandboxServer(tokens=[TOKEN], limits=Limits(enabled=False)) as server,
            SandboxClient(server.url) as sb,
        ):
            settings = load_settings(
                _env_file=None,
                bot_token=TOKEN,
                api_url=server.url,
                database=Path(scratch) / "bench.db",
                secret_key=generate_secret_key(),
            )
            application = build_application(settings)
            await start_application(application)
            bot_id = int(TOKEN.split(":")[0])
            gate = asyncio.Semaphore(concurrency)

            async def limited(i: int) -> float:
                async with gate:
                    return await one_reporter(sb, bot_id, i)

            cpu_before = time.process_time()
            wall_before = time.perf_counter()
            latencies = await asyncio.gather(*(limited(i) for i in range(reporters)))
            wall = time.perf_counter() - wall_before
            cpu = time.process_time() - cpu_before
            await stop_application(application)
    latencies.sort()
    quantile = statistics.quantiles(latencies, n=100)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'reporters':<28}{reporters}")
    print(f"{'concurrency':<28}{concurrency}")
    print(f"{'round trips per second':<28}{reporters / wall:.1f}")
    print(
        f"{'latency p50 / p95 / p99 ms':<28}{quantile[49] * 1000:.1f} / {quantile[94] * 1000:.1f} / "
        f"{quantile[98] * 1000:.1f}"
    )
    print(f"{'CPU ms per round trip':<28}{cpu / reporters * 1000:.2f}  (sandbox + bot + clients)")
    print(f"{'peak memory MiB':<28}{peak_mib:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reporters", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(run(args.reporters, args.concurrency))


if __name__ == "__main__":
    main()
