"""A cell's outputs, from the box that ran it to formgrader's executed copy (issue 29): what it
printed, its error and the figures it showed, in the order it made them, bounded in the record."""
from __future__ import annotations

import pytest

from autograder.notebook.executed import DROPPED, kept_outputs, nbformat_outputs


@pytest.fixture
def pyplot():
    """matplotlib's pyplot with its own show() back after the test (the box replaces it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    show = plt.show
    yield plt
    plt.show = show
    plt.close("all")


def test_the_box_records_where_each_cell_showed_figures_as_jupyter_does(pyplot):
    from autograder.sandbox.box.cells import execute_cells

    sources = ["print('before')\nplt.plot([1, 2])\nplt.show()\nprint('after')",
               "fig, ax = plt.subplots(figsize=(6, 4))\nax.plot([1])",  # left open: shown when the cell ends
               "print(len(plt.get_fignums()))"]
    ran = list(execute_cells(sources, {"plt": pyplot}, 5.0))
    assert ran[0]["figures"] == [[len("before\n"), "<Figure size 640x480 with 1 Axes>"]]
    assert ran[1]["figures"] == [[0, "<Figure size 600x400 with 1 Axes>"]]
    assert "figures" not in ran[2] and ran[2]["output"] == "0\n"  # shown figures are closed, as the inline backend does


def test_outputs_come_back_in_the_order_the_cell_made_them():
    entry = {"status": "error", "output": "before\nafter\n", "figures": [[7, "<Figure size 640x480 with 1 Axes>"]],
             "error": {"type": "ValueError", "message": "bad", "traceback": "line 1\nValueError: bad"}}
    outputs = nbformat_outputs(kept_outputs([entry])[0])
    assert [o.output_type for o in outputs] == ["stream", "display_data", "stream", "error"]
    assert (outputs[0].text, outputs[2].text) == ("before\n", "after\n")
    assert outputs[3].ename == "ValueError" and outputs[3].traceback == ["line 1", "ValueError: bad"]


def test_a_records_outputs_are_bounded_and_anything_malformed_is_left_out():
    cells = [{"status": "ok", "output": "x" * 60_000, "figures": []} for _ in range(5)]
    kept = kept_outputs(cells, total_chars=100_000)
    assert [len(c["output"]) for c in kept[:1]] == [60_000] and kept[2]["output"] == DROPPED.format(chars=100_000)
    assert sum(len(c["output"]) for c in kept) <= 100_000 + 5 * len(DROPPED)
    odd = {"output": 7, "figures": ["junk", [1], ["a", "b"], [2, "<Figure>"]], "error": "not a dict"}
    assert [o.output_type for o in nbformat_outputs(odd)] == ["display_data"]


def test_the_outputs_are_what_nbformats_own_validating_constructor_makes():
    """Built without a schema check each (a third of the autograded/ writer's time): the same
    nodes as nbformat.v4.new_output, valid, whatever text the record holds."""
    import nbformat

    hostile = "\x00\x1b[31m\ud800 " + "é" * 3 + "\r\n"
    entry = {"status": "error", "output": hostile * 3, "figures": [[2, hostile], [5, "<Figure size 640x480 with 1 Axes>"]],
             "error": {"type": hostile, "message": hostile, "traceback": hostile * 2}}
    outputs = nbformat_outputs(kept_outputs([entry])[0])
    assert [o.output_type for o in outputs] == ["stream", "display_data", "stream", "display_data", "stream", "error"]
    for output in outputs:
        nbformat.validate(output, ref=output.output_type, version=4)
        fields = {k: v for k, v in output.items() if k not in ("output_type", "data")}
        assert output == nbformat.v4.new_output(output.output_type, data=output.get("data"), **fields)
    cell = nbformat.v4.new_code_cell("print()", outputs=outputs)
    nbformat.validate(nbformat.v4.new_notebook(cells=[cell]))
