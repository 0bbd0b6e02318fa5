"""The report as a person sees it: Debian's chromium, headless and offline, opens index.html from the file system
without a console message, and its screenshot shows the heatmap (the strong ends of the red-blue map are on
screen). A control page with a console error and a broken heatmap image proves both checks can fail.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.analyzer.test_report import diverging_pixels

pytestmark = pytest.mark.chromium

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
    "--enable-logging=stderr", "--v=0",
]
CONSOLE = re.compile(r":CONSOLE[:(]")


def render(page: Path, shot: Path, profile: Path, size: str = "1400,1400") -> list[str]:
    """Screenshot ``page``; return the console messages chromium logged while loading it."""
    cmd = [shutil.which("chromium") or "chromium", *FLAGS, f"--user-data-dir={profile}", f"--window-size={size}",
           f"--screenshot={shot}", page.resolve().as_uri()]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and shot.is_file(), p.stderr[-3000:]
    return [line for line in p.stderr.splitlines() if CONSOLE.search(line)]


def test_report_opens_cleanly_and_shows_the_heatmap(analysed, tmp_path):
    shot = analysed / "report-screenshot.png"  # kept beside the report for a person to look at
    console = render(analysed / "report" / "index.html", shot, tmp_path / "profile")
    assert console == [], console
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000
    red, blue = diverging_pixels(img)
    assert red > 3000 and blue > 1000, f"the heatmap is not on screen: {red} red, {blue} blue pixels"


def test_the_checks_catch_a_broken_page(analysed, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body><h1>Broken</h1>'
        '<img src="figures/heatmap_BASE_4B.png"><script>console.error("broken report")</script></body></html>'
    )
    console = render(page, tmp_path / "shot.png", tmp_path / "profile")
    assert any("broken report" in line for line in console), console
    red, blue = diverging_pixels(np.asarray(Image.open(tmp_path / "shot.png").convert("RGB")))
    assert red < 100 and blue < 100  # the image is not there: no heatmap on screen
