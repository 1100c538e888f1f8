"""A report as a document of sections, rendered twice: a self-contained HTML page and a
Markdown twin.

The HTML page needs nothing outside itself: the style sheet is inline, every plot is a PNG
embedded as a ``data:`` URI, links are anchors within the page, and there is no script. The
Markdown twin has the same sections, tables and text; its plots are PNG files beside it
(``report.md`` + ``<figure name>.png``). Numbers are printed by :func:`sim.report.format_cell`
in both, so the two say the same thing digit for digit.

Text blocks are plain text in which ```code``` spans are kept as code; nothing else is
interpreted (HTML special characters are escaped).
"""

from __future__ import annotations

import base64
import html
import numbers
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sim.report import format_cell, to_markdown

__all__ = ["Code", "Document", "Figure", "Section", "Table", "Text", "render_files", "render_html",
           "render_markdown", "slug"]


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    """A plot: ``name`` is its file stem in the Markdown twin (letters, digits, ``-``, ``_``)."""

    name: str
    png: bytes
    caption: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", self.name):
            raise ValueError(f"figure name '{self.name}': use letters, digits, '-' and '_' only")


@dataclass(frozen=True)
class Code:
    text: str
    caption: str = ""


Block = Text | Table | Figure | Code


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...] = ()
    subsections: tuple["Section", ...] = ()


@dataclass(frozen=True)
class Document:
    title: str
    intro: tuple[Block, ...] = ()
    sections: tuple[Section, ...] = field(default_factory=tuple)

    def figures(self) -> list[Figure]:
        found = [b for b in self.intro if isinstance(b, Figure)]

        def walk(section: Section) -> None:
            found.extend(b for b in section.blocks if isinstance(b, Figure))
            for sub in section.subsections:
                walk(sub)

        for section in self.sections:
            walk(section)
        return found


_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #34495e; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #bbb; margin-top: 2em; }
h3 { margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 2px 7px; }
th { background: #ecf0f1; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; background: #f7f7f7; }
caption { caption-side: top; text-align: left; font-style: italic; padding-bottom: 3px; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 13px; color: #555; }
pre { background: #f6f8fa; border: 1px solid #ddd; padding: .7em; overflow-x: auto; font-size: 12px; }
code { background: #f2f2f2; padding: 0 3px; }
nav ul { columns: 2; }
"""


def slug(title: str) -> str:
    """``title`` as an anchor or file name: lower-case letters, digits and ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"


def _inline_html(text: str) -> str:
    parts = re.split(r"`([^`]*)`", text)
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts))


def _is_number(value) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, (bool, np.bool_))


def _table_html(table: Table) -> str:
    frame = table.frame
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for row in frame.itertuples(index=False):
        total = "total" in (str(v) for v in row)
        cells = "".join(f'<td class="num">{html.escape(format_cell(v))}</td>' if _is_number(v)
                        else f"<td>{_inline_html(format_cell(v))}</td>" for v in row)
        rows.append(f'<tr class="total">{cells}</tr>' if total else f"<tr>{cells}</tr>")
    caption = f"<caption>{_inline_html(table.caption)}</caption>" if table.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _block_html(block: Block) -> str:
    if isinstance(block, Text):
        return f"<p>{_inline_html(block.text)}</p>"
    if isinstance(block, Table):
        return _table_html(block)
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        return (f'<figure id="fig-{block.name}"><img alt="{html.escape(block.caption, quote=True)}" '
                f'src="data:image/png;base64,{data}"><figcaption>{_inline_html(block.caption)}</figcaption></figure>')
    caption = f"<p><em>{_inline_html(block.caption)}</em></p>" if block.caption else ""
    return f"{caption}<pre><code>{html.escape(block.text)}</code></pre>"


def _section_html(section: Section, level: int, prefix: str) -> str:
    anchor = f"{prefix}{slug(section.title)}"
    parts = [f'<section><h{level} id="{anchor}">{_inline_html(section.title)}</h{level}>']
    parts += [_block_html(block) for block in section.blocks]
    parts += [_section_html(sub, min(level + 1, 6), f"{anchor}--") for sub in section.subsections]
    return "\n".join(parts) + "</section>"


def render_html(document: Document) -> str:
    """The document as one self-contained HTML page (module docstring)."""
    contents = "".join(f'<li><a href="#{slug(s.title)}">{_inline_html(s.title)}</a></li>' for s in document.sections)
    body = "\n".join([
        f"<h1>{_inline_html(document.title)}</h1>",
        *(_block_html(block) for block in document.intro),
        f"<nav><ul>{contents}</ul></nav>",
        *(_section_html(section, 2, "") for section in document.sections),
    ])
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(document.title)}</title><style>{_STYLE}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n")


def _block_markdown(block: Block) -> str:
    if isinstance(block, Text):
        return block.text + "\n"
    if isinstance(block, Table):
        return (f"*{block.caption}*\n\n" if block.caption else "") + to_markdown(block.frame)
    if isinstance(block, Figure):
        return f"![{block.caption}]({block.name}.png)\n"
    caption = f"*{block.caption}*\n\n" if block.caption else ""
    return f"{caption}```\n{block.text.rstrip()}\n```\n"


def _section_markdown(section: Section, level: int) -> list[str]:
    lines = [f"{'#' * level} {section.title}\n"]
    lines += [_block_markdown(block) for block in section.blocks]
    for sub in section.subsections:
        lines += _section_markdown(sub, min(level + 1, 6))
    return lines


def render_markdown(document: Document) -> str:
    """The Markdown twin; its figures are referenced as ``<name>.png`` beside it."""
    lines = [f"# {document.title}\n", *(_block_markdown(b) for b in document.intro)]
    for section in document.sections:
        lines += _section_markdown(section, 2)
    return "\n".join(lines)


def render_files(document: Document) -> dict[str, str | bytes]:
    """``index.html``, ``report.md`` and one ``<name>.png`` per figure (names must be unique)."""
    figures = document.figures()
    names = [f.name for f in figures]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"figure names used twice: {', '.join(duplicates)}")
    files: dict[str, str | bytes] = {f"{f.name}.png": f.png for f in figures}
    files["report.md"] = render_markdown(document)
    files["index.html"] = render_html(document)
    return files
