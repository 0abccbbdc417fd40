"""The web console in a real browser (Debian's Chromium, driven by Playwright): `spell ui`'s
one-time link logs it in; the runs page lists a real run; a running run's page shows its
log growing, its metric chart with its points and its outputs, downloads a file with the
right bytes, and stops the run from its button; a workspace is made and opened from the
workspaces page. A screenshot of each page is kept in the test's folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.browser import PAGE_TIMEOUT, launch_chromium
from tests.helpers import Spell, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

SCRIPT = (
    "import os, sys, time\n"
    "from spellray.metrics import send_metric\n"
    "os.makedirs('out', exist_ok=True)\n"
    "open('out/weights.bin', 'wb').write(bytes(range(256)) * 4)\n"
    "for i in range(6):\n"
    "    send_metric('loss', 10 - i)\n"
    "for i in range(600):\n"
    "    print('step', i, flush=True)\n"
    "    time.sleep(0.5)\n"
)


def shot(page: Page, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes().startswith(b"\x89PNG")


def test_the_console_in_a_browser(spell: Spell, project: Path, tmp_path: Path) -> None:
    (project / "long.py").write_text(SCRIPT)
    run_id = spell.submit_background("python long.py", cwd=project)
    spell.wait_status(run_id, "running")
    wait_for(lambda: any(m["name"] == "loss" for m in
                         spell.api("GET", f"/api/runs/{run_id}/metrics").json()),
             timeout=120, what="the run's loss metric")
    link = spell("ui", "--no-browser").stdout.strip().splitlines()[-1]
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            context = browser.new_context(accept_downloads=True)
            page = context.new_page()
            page.set_default_timeout(PAGE_TIMEOUT)
            page.on("dialog", lambda dialog: dialog.accept())  # the actions' "are you sure"

            # The link logs in and lands on the runs page, which lists the run.
            page.goto(link)
            expect(page).to_have_url(f"{spell.url}/")
            row = page.locator(f"#runs a[href='/runs/{run_id}']")
            expect(row).to_be_visible()
            shot(page, tmp_path, "runs")

            # The run's page: the log grows while it runs.
            row.click()
            expect(page).to_have_url(f"{spell.url}/runs/{run_id}")
            log = page.locator("#log")
            expect(log).to_contain_text("step 1")
            seen = log.inner_text().count("step ")
            wait_for(lambda: log.inner_text().count("step ") > seen + 2, timeout=120,
                     what="the log to grow on the page")
            # The metric chart, drawn with its points.
            chart = page.locator("figure.chart[data-name='loss']")
            expect(chart.locator("figcaption")).to_contain_text("6 points, last 5")
            expect(chart.locator("canvas")).to_have_count(1)
            shot(page, tmp_path, "run-running")

            # Stop it from its button: the status changes on the page.
            page.get_by_role("button", name="Stop").click()
            expect(page.locator("#status")).to_contain_text("stopped", timeout=PAGE_TIMEOUT)
            assert spell.run_info(run_id)["status"] == "stopped"

            # Its outputs, saved as it stopped: a download with the right bytes.
            page.reload()
            link_to_file = page.get_by_role("link", name="weights.bin")
            page.locator("ul.tree details").first.evaluate("d => d.open = true")
            with page.expect_download() as download:
                link_to_file.click()
            saved = tmp_path / "weights.bin"
            download.value.save_as(saved)
            assert saved.read_bytes() == bytes(range(256)) * 4
            shot(page, tmp_path, "run-stopped")

            # A phone's width: the pages fit it (wide tables scroll inside themselves).
            phone = context.new_page()
            phone.set_viewport_size({"width": 390, "height": 844})
            for path, name in (("/", "runs-phone"), (f"/runs/{run_id}", "run-phone")):
                phone.goto(f"{spell.url}{path}")
                width = phone.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, f"{path} is {width} px wide on a 390 px screen"
                shot(phone, tmp_path, name)
            phone.close()

            # A workspace made and opened from the browser.
            page.goto(f"{spell.url}/workspaces")
            page.get_by_label("Name").fill("webws")
            page.get_by_role("button", name="Start").click()
            open_button = page.locator("#workspaces tr", has_text="webws") \
                .get_by_role("button", name="Open")
            expect(open_button).to_be_visible(timeout=PAGE_TIMEOUT)
            shot(page, tmp_path, "workspaces")
            open_button.click()
            expect(page).to_have_url(f"{spell.url}/workspaces/webws/lab",
                                     timeout=PAGE_TIMEOUT)
            page.locator("#jp-main-dock-panel").wait_for()
            shot(page, tmp_path, "workspace-lab")
        finally:
            browser.close()
    assert spell("workspaces", "stop", "webws").returncode == 0
    wait_for(lambda: spell.api("GET", "/api/workspaces/webws").json()["status"] == "stopped",
             timeout=180, what="the workspace to stop")
