"""The README's console screenshots: every one it shows is in docs/console, 1280 px wide
and small, and is one the script takes; the script itself runs (slow: it starts
`ledger dev` and walks the console in Chromium)."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from scripts import screenshots
from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[1]
IMAGE = re.compile(r"!\[[^\]]*\]\((docs/console/[^)]+\.png)\)")


def _size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_the_readme_shows_the_screenshots_the_script_takes() -> None:
    shown = IMAGE.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    assert sorted(shown) == sorted(f"docs/console/{name}.png" for name in screenshots.SHOTS)
    for name in shown:
        path = ROOT / name
        assert _size(path) == (screenshots.WIDTH, screenshots.HEIGHT), name
        assert path.stat().st_size < 150_000, name


@pytest.mark.slow
def test_the_script_takes_every_screenshot(tmp_path: Path) -> None:
    if not screenshots.CHROMIUM.exists():
        unavailable("no /usr/bin/chromium (scripts/bootstrap.sh --browser installs it)")
    written = screenshots.take(tmp_path)
    assert [p.name for p in written] == [f"{name}.png" for name in screenshots.SHOTS]
    for path in written:
        assert _size(path) == (screenshots.WIDTH, screenshots.HEIGHT)
