"""A notebook as its box ran it: what each code cell printed, the error it raised and where it
showed figures, kept in the submission's record (bounded), and written back into the notebook
as nbformat outputs, so formgrader's autograded/ copy reads as `nbgrader autograde` leaves one:
executed, with its outputs.

The box captures a cell's stdout and stderr together (one stream), its error with the student's
own traceback lines, and each figure it showed as Jupyter's text form of a figure
("<Figure size 600x400 with 1 Axes>"): figures are not drawn while grading.
"""
from __future__ import annotations

import nbformat

from autograder.model.sanitize import clean_text

# All cells of one record together (a cell's own caps are the boundary's: sandbox/grader/untrusted.py);
# the lesson's outputs are about 3,000 characters.
RECORD_OUTPUT_CHARS = 200_000
DROPPED = "[output not kept: the notebook's outputs went past {chars:,} characters]"


def kept_outputs(report_cells: list[dict], total_chars: int = RECORD_OUTPUT_CHARS) -> list[dict]:
    """One entry per code cell that ran, in order, from the boundary's accepted cell results:
    {"status", "output", "figures", "error"?}. Past `total_chars` in all, a cell keeps its
    status and a line saying its output was not kept."""
    kept, used = [], 0
    for cell in report_cells:
        entry = {"status": cell.get("status", "ok"), "output": cell.get("output", ""), "figures": cell.get("figures", [])}
        if "error" in cell:
            entry["error"] = dict(cell["error"])
        size = len(entry["output"]) + sum(len(str(v)) for v in entry.get("error", {}).values())
        if used + size > total_chars:
            entry = {"status": entry["status"], "output": DROPPED.format(chars=total_chars), "figures": []}
            size = len(entry["output"])
        used += size
        kept.append(entry)
    return kept


def output_node(output_type: str, **fields) -> nbformat.NotebookNode:
    """An nbformat output, as `nbformat.v4.new_output` makes it but not validated one by one:
    every field here is a string (or a list of strings) made in this module, so the schema holds
    by construction (tests/test_executed_outputs.py validates each kind); validating each of a
    class's ~3,000 outputs was a third of the autograded/ writer's time."""
    if output_type == "display_data":
        fields = {"metadata": {}, **fields}
    return nbformat.from_dict({"output_type": output_type, **fields})


def _stream(text: str):
    return output_node("stream", name="stdout", text=text)


def nbformat_outputs(entry: dict) -> list:
    """A kept cell's outputs as nbformat output nodes, in the order the cell made them."""
    outputs, start = [], 0
    text = clean_text(entry.get("output", ""), RECORD_OUTPUT_CHARS)
    for item in entry.get("figures") or []:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], int)):
            continue  # a record can hold anything (sanitize.py): what is not a figure is left out
        offset, figure = min(max(item[0], start), len(text)), item[1]
        if text[start:offset]:
            outputs.append(_stream(text[start:offset]))
        outputs.append(output_node("display_data", data={"text/plain": clean_text(figure, 100)}))
        start = offset
    if text[start:]:
        outputs.append(_stream(text[start:]))
    error = entry.get("error")
    if isinstance(error, dict):
        traceback = clean_text(error.get("traceback", ""), RECORD_OUTPUT_CHARS).splitlines()
        outputs.append(output_node("error", ename=clean_text(error.get("type", "Error"), 200),
                                   evalue=clean_text(error.get("message", ""), 2_000), traceback=traceback))
    return outputs
