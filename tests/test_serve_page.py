"""The service's web page in a real headless browser: Debian's Chromium driven by Playwright.

Choose an image file in the page: the class probabilities appear as bars (the predicted class
first, the numbers the API gives) and the Grad-CAM heatmap appears as a loaded image. The
screenshot is kept as the test's artifact: tests/artifacts/serve_page.png.
"""
import os
import shutil
from pathlib import Path

import pytest

from test_serve import Server, make_runs

ROOT = Path(__file__).resolve().parents[1]
ARTIFACT = ROOT / "tests" / "artifacts" / "serve_page.png"
CHROMIUM = os.environ.get("TINYLESION_CHROMIUM") or shutil.which("chromium") or \
    "/usr/bin/chromium"
# what Chromium needs on a machine with no display, run as root, with a closed network
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def browser_or_skip():
    sync = pytest.importorskip("playwright.sync_api", reason="pip install playwright "
                               "(the test extra) to drive the browser")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: .ci/run installs it with apt-get install "
                    "chromium; it could not be installed here")
    return sync


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    ham, mel, images = make_runs(tmp_path_factory.mktemp("page"))
    server = Server("--weights", ham, mel)
    yield server, images
    server.stop()


def test_choosing_a_file_shows_bars_and_the_heatmap(served, tmp_path):
    sync = browser_or_skip()
    server, images = served
    _, answer = server.json("POST", "/predict", images[0].read_bytes())
    with sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(f"http://127.0.0.1:{server.port}/")
            assert "Research software" in page.inner_text("#warning")
            page.wait_for_function("document.querySelectorAll('#model option').length == 2")
            page.set_input_files("#file", str(images[0]))
            page.wait_for_selector("#result .bar", timeout=120_000)
            page.wait_for_function(
                "() => { const im = document.getElementById('heatmap');"
                " return !im.hidden && im.complete && im.naturalWidth > 0; }", timeout=120_000)
            bars = page.eval_on_selector_all(
                "#result .bar", "rows => rows.map(r => [r.dataset.cls,"
                " r.querySelector('.fill').style.width])")
            size = page.eval_on_selector("#heatmap", "im => [im.naturalWidth, im.naturalHeight]")
            alt = page.get_attribute("#heatmap", "alt")
            status = page.inner_text("#status")
            ARTIFACT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACT), full_page=True)
        finally:
            browser.close()
    assert len(bars) == 7 and bars[0][0] == answer["class"]
    widths = [float(w.rstrip("%")) for _, w in bars]
    assert widths == sorted(widths, reverse=True)
    assert widths[0] == pytest.approx(100 * answer["confidence"], abs=0.06)
    assert sum(widths) == pytest.approx(100, abs=0.5)
    assert size == [24 * 14, 16 * 14] and answer["class"] in alt
    assert status.startswith("done")
    assert ARTIFACT.stat().st_size > 10_000
