"""What the browser tests share: Debian's Chromium launched by Playwright (its own browser
download is not available here), and where screenshots are kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright

CHROMIUM = Path("/usr/bin/chromium")
# Debian's Chromium in a container: no sandbox (no user namespaces), no GPU, and nothing
# that reaches out to the network on its own.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
# Milliseconds, for Playwright: the machine is slow and shared.
PAGE_TIMEOUT = 180_000


def launch_chromium(playwright: Playwright) -> Browser:
    """Chromium, or a failure that says how to install it (a browser test never skips)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/install_test_deps.sh`",
                    pytrace=False)
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=CHROMIUM_ARGS)
