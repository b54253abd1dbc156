"""The demo page in a real browser: Debian's headless Chromium driven by Playwright (the
system browser; nothing downloaded) uploads t1.jpg, waits for the result and checks the
table (one row per person, cocoer-infer's exclusion sequences) and the annotated photo.
Every request the page makes goes to the local server (no fonts, scripts or analytics
from elsewhere). The screenshot goes to tmp_path, and to ``$COCOER_DEMO_SCREENSHOT``
when set (docs/figures/demo_page.png is made that way, in 256 colours)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.support.demo_server import T1, infer_json, serve_demo

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(), reason=f"no system Chromium at {CHROMIUM} (.ci/run installs it)"
)


@pytest.fixture(scope="module")
def browser() -> Any:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    pytest.importorskip("gradio", reason="the demo extra is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_browser_uploads_t1_and_sees_every_person(
    browser: Any, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    expected = infer_json(tiny_checkpoint, T1, tmp_path / "infer", detector="auto")  # as the page
    persons = expected["persons"]
    assert len(persons) >= 3
    with serve_demo(tiny_checkpoint, tmp_path / "demo") as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto(url, wait_until="load")
        page.locator("#photo input[type=file]").set_input_files(str(T1))
        message = page.locator("#message textarea")
        message.wait_for(state="attached")
        page.wait_for_function(
            "() => (document.querySelector('#message textarea') || {}).value"
            "?.includes('persons in t1.jpg')",
            timeout=120_000,
        )
        assert message.input_value().startswith(f"{len(persons)} persons in t1.jpg (1280x886)")
        row = '#persons [role="row"]:has([role="gridcell"])'  # the data rows of the grid
        page.wait_for_function(f"() => document.querySelectorAll('{row}').length == {len(persons)}")
        rows = page.locator(row)
        for i, p in enumerate(persons):
            cells = rows.nth(i).locator('[role="gridcell"]').all_inner_texts()
            assert cells[0].strip() == str(p["index"])
            assert cells[1].strip() == " -> ".join(p["exclusion_sequence"])
            for level, cell in zip(("context", "body", "head"), cells[4:7], strict=True):
                names = [lab["name"] for lab in p["levels"][level]["labels"]]
                assert cell.strip().split(" ")[0] == (names[0] if names else "-")
        size = page.wait_for_function(
            "() => { const i = document.querySelector('#annotated img');"
            " return i && i.complete && i.naturalWidth ? [i.naturalWidth, i.naturalHeight]"
            " : null; }"
        ).json_value()
        assert size == [1280, 886]
        shot = tmp_path / "demo_page.png"
        page.screenshot(path=str(shot), full_page=True)
        target = os.environ.get("COCOER_DEMO_SCREENSHOT")
        if target:  # 256 colours: a third of the size, the same picture
            Image.open(shot).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(
                target, optimize=True
            )
        page.close()
    outside = [u for u in requested if not u.startswith(url) and not u.startswith("data:")]
    assert not outside, f"the page fetched from elsewhere: {outside[:5]}"
