"""What a student reads is Markdown (CommonMark): the feedback page renders it as HTML
(outputs/markdown_html.py), Gradescope renders it (`output_format: "md"`), and a terminal shows it
as it is, where backticks and indented blocks read naturally.

Text that came from a submission (code, names, exception messages, tracebacks) must reach the
reader literally, whatever characters it holds: these helpers put it in a code span or an
indented code block, where Markdown interprets nothing. Torch-free.
"""
from __future__ import annotations

import re

_BACKTICKS = re.compile(r"`+")


def code_span(text: str) -> str:
    """`text` as an inline code span that shows it literally: the fence is one backtick longer
    than the longest run of backticks in it (CommonMark 6.1), and a space pads a text that
    starts or ends with a backtick. Line breaks become spaces (a span is one line)."""
    text = " ".join(text.splitlines()) or " "
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    pad = " " if text[0] == "`" or text[-1] == "`" or (text[0] == " " and text[-1] == " " and text.strip()) else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def code_block(text: str) -> str:
    """`text` as an indented code block (four spaces: CommonMark 4.4), with a blank line before
    it so that it never continues a paragraph. Nothing inside is interpreted."""
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    return "\n\n" + "\n".join(("    " + line) if line.strip() else "" for line in lines)
