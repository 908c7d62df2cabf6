"""report.html: report.md as one self-contained page, its figures inlined as base64 PNG.

The page is report.md rendered by markdown-it (CommonMark plus tables) with raw HTML off, so a text
from the data that looks like a tag ("<b>", "<script>") shows as written instead of acting; nothing
is fetched from anywhere (no scripts, fonts or style sheets outside the page), so the file can be
mailed or attached on its own.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

# A figure the page inlines: a file name of the run folder, no path (report.md links its figures so).
_FIGURE_SOURCE = re.compile(r'src="([A-Za-z0-9_.-]+\.png)"')

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 72rem; margin: 2rem auto;
       padding: 0 1rem; color: #1b1b1b; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.92rem; }
th, td { border: 1px solid #c9c9c9; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f1f3f5; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; height: auto; display: block; margin: 0.8rem 0; }
code { background: #f1f3f5; padding: 0 0.2rem; }
h1 { border-bottom: 2px solid #dee2e6; }
h2 { margin-top: 2rem; border-bottom: 1px solid #dee2e6; }
"""


def render(markdown_text: str, folder: Path, title: str) -> str:
    """The page of `markdown_text`, each `src="X.png"` of a file in `folder` replaced by its bytes."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown_text)

    def inline(match: re.Match[str]) -> str:
        path = folder / match.group(1)
        if not path.is_file():
            return match.group(0)
        return f'src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode("ascii")}"'

    body = _FIGURE_SOURCE.sub(inline, body)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )
