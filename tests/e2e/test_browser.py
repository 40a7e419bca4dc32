"""A person in a browser: the demo page in headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.demo import DemoWorld, run_demo

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# One sample per script Beacon will ship, with the fontconfig language that must have a font.
SCRIPT_SAMPLES = {
    "km": "សួស្តី។ តើអ្នកមានសុវត្ថិភាពទេ?",
    "my": "မင်္ဂလာပါ။ သင် လုံခြုံပါသလား။",
    "lo": "ສະບາຍດີ. ເຈົ້າປອດໄພບໍ?",
    "th": "สวัสดี คุณปลอดภัยไหม",
    "zh-cn": "你好。你现在安全吗？",
    "hi": "नमस्ते। क्या आप सुरक्षित हैं?",
    "bn": "নমস্কার। আপনি কি নিরাপদ?",
    "si": "ආයුබෝවන්. ඔබ ආරක්ෂිතද?",
    "ta": "வணக்கம். நீங்கள் பாதுகாப்பாக இருக்கிறீர்களா?",
    "am": "ሰላም። ደህና ነህ?",
    "ur": "سلام۔ کیا آپ محفوظ ہیں؟",
}


def _require_browser() -> None:
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("BEACON_REQUIRE_BROWSER") == "1":
        pytest.fail("Chromium is required here (BEACON_REQUIRE_BROWSER=1) but /usr/bin/chromium is missing")
    pytest.skip("Debian's chromium is not installed (run `make system-deps`)")


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[DemoWorld]:
    _require_browser()
    stop = asyncio.Event()
    ready: asyncio.Future[DemoWorld] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_demo(0, tmp_path / "demo.db", "en", stop, ready))
    done, _ = await asyncio.wait({task, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises what stopped the demo
    world = ready.result()
    try:
        yield world
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.fixture
async def page(demo: DemoWorld, tmp_path: Path) -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = await browser.new_context(viewport={"width": 1400, "height": 900})
        page = await context.new_page()
        try:
            yield page
        finally:
            await page.screenshot(path=str(tmp_path / "last.png"))
            await browser.close()


async def test_reporter_sends_start_in_the_browser_and_sees_the_answer(
    demo: DemoWorld, page, tmp_path: Path
) -> None:
    """Typing /start in the reporter's phone pane shows the bot's greeting, live."""
    await page.goto(demo.page)
    await page.get_by_test_id("reporter-input").fill("/start")
    await page.get_by_test_id("reporter-send").click()
    reply = page.locator('[data-testid="reporter-transcript"] [data-testid="message"][data-from-bot="true"]')
    await reply.first.wait_for(timeout=15_000)
    assert "Hello. You can tell us here" in await reply.first.inner_text()
    mine = page.locator('[data-testid="reporter-transcript"] [data-testid="message"][data-from-bot="false"]')
    assert "/start" in await mine.first.inner_text()
    await page.screenshot(path=str(tmp_path / "reporter.png"))


async def test_a_person_files_a_whole_report_in_the_browser(demo: DemoWorld, page, tmp_path: Path) -> None:
    """Clicking through every question ends with a receipt code, and the case and its alert are stored."""
    await page.goto(demo.page)
    await page.get_by_test_id("reporter-input").fill("/start")
    await page.get_by_test_id("reporter-send").click()
    transcript = page.get_by_test_id("reporter-transcript")

    async def click(label: str, *, toggle: bool = False) -> None:
        button = transcript.get_by_test_id("inline-button").filter(has_text=label).last
        await button.wait_for(timeout=15_000)
        # The message the button belongs to, by its Telegram id (the page may redraw its elements).
        message_id = await button.evaluate("b => b.closest('[data-message-id]').dataset.messageId")
        await button.click()
        if not toggle:
            # Answered once the bot has taken this question's buttons away (it does so after showing the
            # next question): only then is the next click on the new question, not on this one again.
            await page.wait_for_function(
                "id => !document.querySelector(`[data-testid='reporter-transcript'] "
                "[data-message-id='${id}'] [data-testid='inline-button']`)",
                arg=message_id,
                timeout=30_000,
            )

    await click("No")  # danger now?
    await click("A relative or friend")
    await click("No")  # tell us who the person is?
    await click("Cambodia")
    await click("Poipet")
    await page.get_by_test_id("reporter-input").fill("Compound behind the casino, building C")
    await page.get_by_test_id("reporter-send").click()
    await click("Taken away")  # passport
    await click("Taken away")  # phone
    await click("Locked in or guarded", toggle=True)
    await click("Done")
    await click("21 to 100")
    await click("Vietnam", toggle=True)
    await click("Done")
    await click("Done")  # details
    await click("Only when I check with /status")
    await click("Send the report")
    receipt = transcript.get_by_test_id("message").filter(has_text="Your code:")
    await receipt.wait_for(timeout=15_000)
    assert re.search(r"\d{4} \d{4} \d{4} \d{4}", await receipt.inner_text())
    await page.screenshot(path=str(tmp_path / "receipt.png"))
    bubbles = transcript.get_by_test_id("message")
    await page.wait_for_function(
        '() => document.querySelectorAll(\'[data-testid="reporter-transcript"] [data-testid="message"]\')'
        ".length === 1",
        timeout=15_000,
    )
    assert await bubbles.count() == 1, "the conversation is wiped, only the receipt remains"
    with sqlite3.connect(tmp_path / "demo.db") as db:
        assert db.execute("SELECT count(*) FROM cases WHERE area_id = 'kh-poipet'").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM outbox").fetchone() >= (1,)

    # The coordinators' side: the case's topic appears, its card shows, and Claim works from the browser.
    topic = page.get_by_test_id("topic-button").filter(has_text="Poipet")
    await topic.wait_for(timeout=20_000)
    await topic.click()
    group = page.get_by_test_id("group-transcript")
    card = group.get_by_test_id("message").filter(has_text="Why:")
    await card.wait_for(timeout=15_000)
    assert "Poipet, Cambodia" in await card.inner_text()
    await card.get_by_test_id("inline-button").filter(has_text="Claim").click()
    await group.get_by_test_id("message").filter(has_text="Assigned to: Demo").wait_for(timeout=15_000)
    await page.screenshot(path=str(tmp_path / "coordinators.png"))


async def test_every_shipped_script_has_a_font_and_urdu_reads_right_to_left(demo: DemoWorld, page) -> None:
    """Messages in every script render with an installed font, and Urdu is laid out right to left."""
    missing = [
        lang
        for lang in SCRIPT_SAMPLES
        if not subprocess.run(
            ["fc-list", f":lang={lang}"], capture_output=True, text=True, check=False
        ).stdout.strip()
    ]
    assert not missing, f"no font installed for: {missing} (make system-deps installs them)"
    from sandbox.client import SandboxClient

    async with SandboxClient(demo.url) as sb:
        for text in SCRIPT_SAMPLES.values():
            await sb.send_text(demo.reporter_id, text, bot_id=demo.bot_id)
    await page.goto(demo.page)
    bubbles = page.locator(
        '[data-testid="reporter-transcript"] [data-testid="message"][data-from-bot="false"]'
    )
    await page.wait_for_function(
        'n => document.querySelectorAll(\'[data-testid="reporter-transcript"] [data-testid="message"]'
        '[data-from-bot="false"]\').length >= n',
        arg=len(SCRIPT_SAMPLES),
        timeout=15_000,
    )
    texts = [await bubbles.nth(i).inner_text() for i in range(await bubbles.count())]
    for sample in SCRIPT_SAMPLES.values():
        assert any(sample in t for t in texts), f"{sample!r} not shown"
    urdu = bubbles.filter(has_text=SCRIPT_SAMPLES["ur"]).first
    direction = await urdu.evaluate(
        "el => { const t = [el, ...el.querySelectorAll('*')].find(e => e.textContent.includes('سلام')"
        " && e.children.length === 0) || el; return getComputedStyle(t).direction; }"
    )
    assert direction == "rtl"
