"""Student-facing text is Markdown (model/markdown_text.py); the pages render it with
markdown-it-py (CommonMark), which the environment already has (rich's dependency).

Configured for text that mixes the kit's words with a submission's: raw HTML is escaped, not
passed through (`html: False`), and links, images, autolinks and link reference definitions are
off, so no text can make a page fetch or point anywhere; single line breaks are kept (`breaks`).
Whatever a submission sent reaches the page only as escaped text or inside code.
"""
from __future__ import annotations

import functools

from markupsafe import Markup


@functools.cache
def _parser():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "breaks": True}).disable(
        ["link", "image", "autolink", "reference", "html_inline", "html_block"])


def markdown_html(text) -> Markup:
    """`text` (Markdown) as safe HTML for a Jinja template."""
    return Markup(_parser().render(str(text or "")))
