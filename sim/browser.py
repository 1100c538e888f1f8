"""Render a report page in a real browser: headless Chromium (Debian's ``chromium``), for the
report's browser check and its screenshot.

:func:`screenshot` loads a local HTML file with networking and every background service off,
saves a PNG of the window, and returns what the browser said on its console: an uncaught script
error or a console error is logged on stderr (``--enable-logging=stderr``) as a line with
``Uncaught`` or ``:CONSOLE`` in it. D-Bus, GPU and sandbox warnings of a headless container
are not console messages and are ignored. :func:`image_stats` tells a blank PNG from one with
content.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["BrowserError", "Render", "find_chromium", "image_stats", "screenshot"]

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
_CONSOLE_MARKERS = ("Uncaught", ":CONSOLE")


class BrowserError(RuntimeError):
    """No Chromium, or Chromium failed to render the page; the message says which."""


@dataclass(frozen=True)
class Render:
    """A page rendered: the screenshot's path, the console lines (errors and messages) the page
    produced, and Chromium's whole stderr (for a failure's diagnosis)."""

    png: Path
    console: list[str]
    stderr: str


def find_chromium() -> str | None:
    """The Chromium executable: /usr/bin/chromium (Debian's package), else one on PATH."""
    for candidate in CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def screenshot(page: str | Path, png: str | Path, width: int = 1280, height: int = 2000,
               timeout_s: float = 120.0) -> Render:
    """Render the local HTML file ``page`` headless at ``width`` × ``height`` pixels and save the
    window as ``png``. BrowserError when there is no Chromium, it fails, or it writes no image."""
    chromium = find_chromium()
    if chromium is None:
        raise BrowserError(f"no Chromium found (looked for {', '.join(CANDIDATES)}); on Debian: "
                           "apt-get install chromium")
    page, png = Path(page).resolve(), Path(png).resolve()
    if not page.is_file():
        raise BrowserError(f"'{page}' does not exist")
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="prunesim-chromium-") as profile:
        command = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", f"--screenshot={png}",
            f"--window-size={width},{height}", page.as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise BrowserError(f"Chromium did not finish rendering '{page}' in {timeout_s:g} s") from None
    if done.returncode != 0 or not png.is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BrowserError(f"Chromium failed on '{page}' (exit {done.returncode}): {last}")
    console = [line for line in done.stderr.splitlines() if any(m in line for m in _CONSOLE_MARKERS)]
    return Render(png, console, done.stderr)


def image_stats(png: str | Path) -> dict[str, float]:
    """``colours``: distinct colours in the image; ``ink``: the fraction of pixels that differ
    from the most common colour (the background). A blank page has 1 colour and ink 0."""
    from matplotlib.image import imread

    pixels = imread(str(png))
    flat = (np.round(pixels[..., :3] * 255).astype(np.uint32) if pixels.dtype.kind == "f"
            else pixels[..., :3].astype(np.uint32)).reshape(-1, 3)
    codes = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    values, counts = np.unique(codes, return_counts=True)
    return {"colours": float(len(values)), "ink": 1.0 - counts.max() / codes.size,
            "width": float(pixels.shape[1]), "height": float(pixels.shape[0])}
