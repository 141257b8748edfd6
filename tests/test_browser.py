"""The slider tuner in a real browser: JupyterLab on localhost, headless Chromium.

Runs 01_preprocess (a copy, in a temporary folder) up to the tuner, switches on the
bilateral filter, moves its ``d`` slider, and checks that the displayed image
changes and that ``tuner.config`` read back in a new cell has the new value.

Needs Debian's ``chromium`` (``/usr/bin/chromium``) and the ``playwright`` Python
package (no browser download: Playwright drives the system Chromium). Run it
alone with ``pytest -m browser``.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyter(tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright")
    work = tmp_path / "lab"
    work.mkdir()
    # A copy without stored outputs, so that every widget on the page is a live one.
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(ROOT / "notebooks" / "01_preprocess.ipynb", as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, work / "01_preprocess.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "SKINLIB_RUN": str(tmp_path / "run"), "SKINLIB_PROFILE": "quick"}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--ServerApp.open_browser=False", "--allow-root",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start within a minute")
        yield f"{base}/lab/tree/01_preprocess.ipynb?token={token}"
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()


def _image_src(page) -> str:
    return page.locator(".skinlib-tuner-image").first.get_attribute("src") or ""


def _wait_for_change(page, before: str, what: str, timeout: float = 60) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        now = _image_src(page)
        if now and now != before:
            return now
        page.wait_for_timeout(200)
    pytest.fail(f"the tuner image did not change after {what}")


def test_slider_changes_image_and_config(jupyter, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            text = _drive(page, jupyter)
        except BaseException:  # pytest.fail raises a BaseException
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)  # for a human to look at
            raise
        finally:
            browser.close()
    assert "bilateral(d=7" in text, text


def _drive(page, url: str) -> str:
    """Run the notebook, use the tuner, and return what `print(tuner.config)` printed."""
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    page.wait_for_timeout(2000)  # let the kernel connection settle before sending commands

    # Run every cell; the last ones preprocess the sample, the tuner sits before them.
    # On a loaded machine a key press can reach JupyterLab before the notebook (or the
    # palette's input) has focus: the whole step is retried, and the command is written
    # into the palette's input element rather than typed at whatever has focus.
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(4):
        try:
            page.locator(".jp-Notebook").first.click()
            page.keyboard.press("Escape")
            page.keyboard.press("Control+Shift+c")
            palette = page.locator(".lm-CommandPalette-input")
            palette.wait_for(timeout=10_000)
            palette.fill("Run All Cells")
            page.locator(".lm-CommandPalette-item", has_text="Run All Cells").first.click(timeout=20_000)
            break
        except PlaywrightTimeout:
            if attempt == 3:
                raise
    page.wait_for_selector(".skinlib-tuner-image", state="attached", timeout=180_000)
    page.wait_for_function(
        "() => (document.querySelector('.skinlib-tuner-image') || {}).src", timeout=60_000
    )
    first = _image_src(page)

    # Switch the bilateral filter on: the view gains a column.
    page.locator(".widget-checkbox", has_text="bilateral").locator("input").check()
    second = _wait_for_change(page, first, "switching on the bilateral filter")

    # Move the d slider: type a new value into its readout, as a user can.
    slider = page.locator('.widget-slider:has(label:text-is("d"))').first
    readout = slider.locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+a")
    page.keyboard.type("7")
    page.keyboard.press("Enter")
    _wait_for_change(page, second, "moving the d slider")

    # Read the configuration back in a new cell at the end of the notebook.
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=180_000)
    page.locator(".jp-Cell").last.click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.type("print('TUNER_READBACK', tuner.config)")
    page.keyboard.press("Shift+Enter")
    # A case-sensitive pattern: a plain has_text would also match "configuration" elsewhere.
    output = page.locator(".jp-OutputArea-output", has_text=re.compile("TUNER_READBACK")).last
    output.wait_for(timeout=60_000)
    return output.inner_text()
