"""A real Chromium (Debian's `chromium`, driven by Playwright) against live clinqa servers.

Never `playwright install`: the browser is the system one. Without it the browser tests are skipped with
the reason, except on CI (`CI=true`), where a missing browser fails them so they cannot silently vanish.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

# Stable copy of the screenshots for notes and reviews (the originals are under pytest's basetemp).
STABLE_SHOTS = Path(os.environ.get("CLINQA_SCREENSHOT_DIR", "/tmp/clinqa-widget-shots"))


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"{reason} (CI=true: browser tests must not be skipped; .ci/run installs chromium with apt)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed: pip install -e '.[dev]'")
    executable = chromium_path()
    if executable is None:
        _missing("no chromium on PATH: apt-get install chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Folder for screenshots under the test run's output folder; copied to STABLE_SHOTS at the end."""
    folder = tmp_path_factory.mktemp("screenshots")
    yield folder
    pngs = sorted(folder.glob("*.png"))
    if pngs:
        STABLE_SHOTS.mkdir(parents=True, exist_ok=True)
        for png in pngs:
            shutil.copy2(png, STABLE_SHOTS / png.name)
        _saved.extend(pngs)


_saved: list[Path] = []


def pytest_terminal_summary(terminalreporter) -> None:
    """List the screenshots at the end of the run, where they are easy to find."""
    if _saved:
        terminalreporter.write_sep("-", f"widget screenshots: {_saved[0].parent} (copied to {STABLE_SHOTS})")
        for png in _saved:
            terminalreporter.write_line(str(png))
