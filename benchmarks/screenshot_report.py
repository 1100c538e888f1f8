"""Screenshot a comparison report in headless Chromium (Debian's ``chromium``) and check that the
page rendered cleanly: no console errors, and the image is not blank.

    .venv/bin/python benchmarks/screenshot_report.py reports/demo/report --out reports/demo/report.png

REPORT is a report folder (its index.html) or an HTML file. Exit status 0 when the page rendered
without console messages and the screenshot has content; 1 otherwise (the messages printed);
2 when Chromium is missing or fails. ``prunesim report ... --screenshot PNG`` does the same
right after building a report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sim.browser import BrowserError, image_stats, screenshot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="report folder or HTML file")
    parser.add_argument("--out", required=True, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2000)
    args = parser.parse_args(argv)
    page = Path(args.report)
    page = page / "index.html" if page.is_dir() else page
    try:
        render = screenshot(page, args.out, args.width, args.height)
    except BrowserError as error:
        print(f"screenshot_report: error: {error}", file=sys.stderr)
        return 2
    stats = image_stats(render.png)
    print(f"wrote {render.png} ({stats['width']:.0f}x{stats['height']:.0f} px, {stats['colours']:.0f} colours, "
          f"{100 * stats['ink']:.1f}% of pixels not background)")
    for line in render.console:
        print(f"console: {line}")
    blank = stats["colours"] < 2
    if blank:
        print("the screenshot is blank")
    return 1 if render.console or blank else 0


if __name__ == "__main__":
    sys.exit(main())
