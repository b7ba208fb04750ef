"""The lesson's plots say what the text around them says. The master's code cells run here, in
this process, with the hidden tests left out and matplotlib's Agg backend; every figure the
notebook shows is kept and read back:

* the training panels end with the slope the training ends with (the loop calls the plot helper
  before each update, so without a final panel the last one shows the slope before the last
  update, while the notebook prints the final one);
* the two-start loss comparison separates the two curves where the text makes its claim, at the
  end of training (on a linear axis both end near 0, indistinguishable).
"""
import re
from pathlib import Path

import nbformat
import pytest

MASTER = Path(__file__).resolve().parents[1] / "source" / "pytorch_slope" / "pytorch_slope.ipynb"
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)


@pytest.fixture(scope="module")
def lesson():
    """(the notebook's namespace after running it, every figure it showed, in order)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = []
    original_show = plt.show
    plt.show = lambda *args, **kwargs: shown.append(plt.gcf())
    namespace: dict = {"__name__": "__lesson__"}
    try:
        for cell in nbformat.read(MASTER, as_version=4).cells:
            if cell.cell_type == "code":
                exec(compile(HIDDEN.sub("", cell.source), "<master cell>", "exec"), namespace)
    finally:
        plt.show = original_show
    return namespace, shown


def _training_panels(figures):
    return [f for f in figures if len(f.axes) == 2 and f.axes[1].get_title().endswith("fitted line")]


def test_last_training_panel_shows_the_final_slope(lesson):
    namespace, figures = lesson
    panels = _training_panels(figures)
    epochs = namespace["EPOCHS"]
    assert len(panels) == epochs + 1, f"expected one panel per epoch and one after training, got {len(panels)}"
    final_w = namespace["w"].item()
    ax_cost, ax_fit = panels[-1].axes
    fitted = next(line for line in ax_fit.get_lines() if line.get_label().startswith("w * x"))
    xs, ys = fitted.get_xdata(), fitted.get_ydata()
    slope = (ys[-1] - ys[0]) / (xs[-1] - xs[0])
    assert slope == pytest.approx(final_w, abs=1e-5), "the last panel does not show the trained slope"
    assert f"{final_w:.4f}" in fitted.get_label()  # the same digits as the printed final slope
    # the red dot sits on the cost curve at the final slope
    X, Y = namespace["X"], namespace["Y"]
    final_cost = ((final_w * X - Y) ** 2).mean().item()
    dot = [line for line in ax_cost.get_lines() if line.get_label() == "final w"]
    assert dot and dot[0].get_xdata()[0] == pytest.approx(final_w) and dot[0].get_ydata()[0] == pytest.approx(final_cost, rel=1e-4)


def test_each_epoch_has_its_panel_and_the_final_one_says_so(lesson):
    namespace, figures = lesson
    titles = [p.axes[0].get_title().split(":")[0] for p in _training_panels(figures)]
    epochs = namespace["EPOCHS"]
    assert [t for t in titles if t.startswith("epoch")] == [f"epoch {e}" for e in range(epochs)]
    assert titles[-1] == f"after {epochs} updates"


def test_two_start_comparison_tells_the_curves_apart_at_the_end(lesson):
    namespace, figures = lesson
    ax = next(f.axes[0] for f in figures if len(f.axes) == 1 and len(
        [line for line in f.axes[0].get_lines() if line.get_label().startswith("start at")]) == 2)
    assert ax.get_yscale() == "log"
    ax.figure.canvas.draw()
    first, second = [line for line in ax.get_lines() if line.get_label().startswith("start at")]
    to_axes = ax.transAxes.inverted()

    def height(line, index):  # where on the plot, 0 (bottom) to 1 (top), a point is drawn
        return to_axes.transform(ax.transData.transform((line.get_xdata()[index], line.get_ydata()[index])))[1]

    # the claim: the worse start is still visibly higher after the same number of epochs
    assert height(second, -1) - height(first, -1) > 0.05, "the two curves end on top of each other"
    assert namespace["losses_second"][-1] > namespace["losses"][-1]


def test_the_training_panels_keep_their_axes_from_epoch_to_epoch(lesson):
    """Issue 29: the fit panel rescaled its y-axis every epoch, so the data's slope seemed to
    change; every panel now has the same axes, and they hold the data."""
    namespace, figures = lesson
    panels = _training_panels(figures)
    limits = {(tuple(ax.get_xlim()), tuple(ax.get_ylim())) for panel in panels for ax in panel.axes[1:]}
    assert len(limits) == 1, f"the fit panels' axes change between epochs: {sorted(limits)}"
    assert len({(tuple(p.axes[0].get_xlim()), tuple(p.axes[0].get_ylim())) for p in panels}) == 1
    (x_low, x_high), (y_low, y_high) = limits.pop()
    X, Y = namespace["X"].flatten().tolist(), namespace["Y"].flatten().tolist()
    assert x_low <= min(X) and max(X) <= x_high and y_low <= min(Y) and max(Y) <= y_high
    # the first panel's line, from the first guess, is drawn whole too
    first = next(line for line in panels[0].axes[1].get_lines() if line.get_label().startswith("w * x"))
    assert y_low <= min(first.get_ydata()) and max(first.get_ydata()) <= y_high
