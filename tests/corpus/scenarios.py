"""The kit's corpus of submissions, as data: one entry per misconception of issue 2, plus the
reference and the untouched release.

Each scenario names what it expects (`<what>__<score>_of_10`) and says how to build the notebook
(`autograder.release.synthetic.make_submission` overrides by function name and extra cells inserted after the
first code cell), the exact score of every check, and for each failed check the misconception id
(autograder/feedback/misconceptions.py) the feedback must name and/or phrases it must contain.
Both grading paths (the kit's engine and `nbgrader autograde`) must give these same scores.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.assignment import CHECKS
from autograder.release.synthetic import RELEASE_NOTEBOOK, SOLUTION_CELLS, make_submission

# What a student wrote in the manually graded markdown cell (any edit leaves it for a human).
ANSWER = ("The step is lr times the gradient, and the gradient of the MSE shrinks in proportion to "
          "the distance from the best slope, so each step is smaller than the one before.")
MANUAL_CELL = "why_updates_shrink"


def _released_stub(function: str) -> str:
    """The release's cell for `function`, untouched (the NotImplementedError stub)."""
    release = nbformat.read(RELEASE_NOTEBOOK, as_version=4)
    grade_id = SOLUTION_CELLS[function]
    return next(c.source for c in release.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def scores(*failed: str) -> dict[str, int]:
    """Every check's score: full points except the `failed` checks, which score 0."""
    unknown = set(failed) - set(CHECKS)
    assert not unknown, f"unknown checks {unknown}"
    return {name: 0 if name in failed else points for name, points in CHECKS.items()}


@dataclass(frozen=True)
class Scenario:
    name: str
    scores: dict[str, int]
    overrides: dict[str, str] = field(default_factory=dict)
    extra_cells: tuple[str, ...] = ()
    solved: bool = True
    answer: str | None = ANSWER  # None: leave the manual cell as released
    # failed check -> misconception id the check must report
    misconceptions: dict[str, str] = field(default_factory=dict)
    # check -> phrases its feedback must contain
    phrases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # phrases the notebook-level notes must contain
    notes: tuple[str, ...] = ()
    # the scenario makes some top-level cells or probes run into a time limit
    hangs: bool = False

    @property
    def total(self) -> int:
        return sum(self.scores.values())

    def notebook(self):
        notebook = make_submission(self.overrides, extra_cells=list(self.extra_cells), solved=self.solved)
        if self.answer is not None:
            for cell in notebook.cells:
                if cell.metadata.get("nbgrader", {}).get("grade_id") == MANUAL_CELL:
                    cell.source = self.answer
        return notebook

    def write(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(self.notebook(), path)
        return path


def _fn(header: str, *body: str) -> str:
    return header + "\n" + "\n".join("    " + line for line in body) + "\n"


FORWARD = "def forward(x, w):"
CRITERION = "def criterion(yhat, y):"
UPDATE = "def update(w, lr):"
ZERO_GRAD = "def zero_grad(w):"

SCENARIOS: list[Scenario] = [
    # ------------------------------------------------------------------ the two ends
    Scenario("reference__10_of_10", scores()),
    Scenario(
        "release_untouched__0_of_10", scores(*CHECKS), solved=False, answer=None,
        misconceptions={name: "not_implemented" for name in CHECKS},
        # the checks that run forward among other steps say so briefly; forward's own check says what to do
        phrases={"forward": ("Step: `forward(x, w)`", "still the stub"),
                 "gradient": ("Not tested yet: this check runs your `forward`",)},
        notes=("still the stub: replace `raise NotImplementedError()` with your code",),
    ),
    # ------------------------------------------------------------------ update
    Scenario(
        "update_sign__6_of_10", scores("update", "final_loss"),
        overrides={"update": _fn(UPDATE, "w.data = w.data + lr * w.grad.data")},
        misconceptions={"update": "update_sign", "final_loss": "update_sign"},
        phrases={"update": ("expected_w =", "got w =")},
    ),
    Scenario(
        "update_no_lr__6_of_10", scores("update", "final_loss"),
        overrides={"update": _fn(UPDATE, "w.data = w.data - w.grad.data")},
        misconceptions={"update": "update_no_lr", "final_loss": "update_no_lr"},
    ),
    Scenario(
        "update_rebinds_local__6_of_10", scores("update", "final_loss"),
        overrides={"update": _fn(UPDATE, "w = w - lr * w.grad")},
        misconceptions={"update": "update_rebinds", "final_loss": "update_rebinds"},
        phrases={"update": ("only rebinds the local name",)},
    ),
    Scenario(
        "update_inplace_on_leaf__6_of_10", scores("update", "final_loss"),
        overrides={"update": _fn(UPDATE, "w -= lr * w.grad")},
        misconceptions={"update": "update_inplace_leaf", "final_loss": "update_inplace_leaf"},
        # the student's own line, from their traceback
        phrases={"update": ("w -= lr * w.grad", "torch.no_grad()")},
    ),
    Scenario(
        "update_loses_requires_grad__6_of_10", scores("update", "final_loss"),
        overrides={"update": _fn(UPDATE, "w.requires_grad_(False)", "w -= lr * w.grad")},
        # the loop fails in the provided code at the next backward(): blamed on update, the error kept
        misconceptions={"update": "update_not_leaf", "final_loss": "update_not_leaf"},
        phrases={"update": ("requires_grad=False",), "final_loss": ("does not require grad", "your `update` gives back")},
    ),
    Scenario(
        # torch.tensor([lr]) has shape (1,): assigning w.data reshapes the 0-dim w; the values
        # are right, so training still matches and only the update check fails
        "update_changes_shape__8_of_10", scores("update"),
        overrides={"update": _fn(UPDATE, "w.data = w.data - torch.tensor([lr]) * w.grad.data")},
        misconceptions={"update": "update_shape"},
        # on a GPU the same line is wrong_device (tests/test_cuda.py); the CPU message says so
        phrases={"update": ("shape (1,)", "graded on a GPU")},
    ),
    Scenario(
        # clamping the step is right for the small gradients of training, wrong for large ones
        "update_clamps_step__8_of_10", scores("update"),
        overrides={"update": _fn(UPDATE, "w.data = w.data - torch.clamp(lr * w.grad.data, -50, 50)")},
        misconceptions={"update": "update_step_size"},
        phrases={"update": ("expected_w =", "got w =", "times lr·grad")},
    ),
    Scenario(
        "update_stub_left__6_of_10", scores("update", "final_loss"),
        overrides={"update": _released_stub("update")},
        misconceptions={"update": "not_implemented", "final_loss": "not_implemented"},
        phrases={"update": ("Step: `update(w, lr)`",), "final_loss": ("runs your `update`, which is still the stub",)},
    ),
    Scenario(
        "update_loops_forever__6_of_10", scores("update", "final_loss"),
        overrides={"update": _fn(UPDATE, "while True:", "    w.data = w.data - lr * w.grad.data")},
        misconceptions={"update": "timeout", "final_loss": "timeout"},
        phrases={"update": ("did not return in time", "Step: `update(w, lr)`"), "final_loss": ("your `update` did not return",)},
        notes=("ran past its time limit",),
        hangs=True,
    ),
    # ------------------------------------------------------------------ zero_grad
    Scenario(
        "zero_grad_never_zeroes__7_of_10", scores("zero_grad", "final_loss"),
        overrides={"zero_grad": _fn(ZERO_GRAD, "pass")},
        misconceptions={"zero_grad": "zero_grad_not_reset", "final_loss": "zero_grad_not_reset"},
        phrases={"zero_grad": ("accumulate", "w.grad afterwards =")},
    ),
    Scenario(
        "zero_grad_zeroes_weight__7_of_10", scores("zero_grad", "final_loss"),
        overrides={"zero_grad": _fn(ZERO_GRAD, "w.data.zero_()")},
        misconceptions={"zero_grad": "zero_grad_weight", "final_loss": "zero_grad_weight"},
        phrases={"zero_grad": ("got w = 0",)},
    ),
    Scenario(
        "zero_grad_raises__7_of_10", scores("zero_grad", "final_loss"),
        overrides={"zero_grad": _fn(ZERO_GRAD, "w.grad.zero()")},
        misconceptions={"zero_grad": "exception", "final_loss": "exception"},
        # the student's own traceback: their line and the error, not the grader's frames
        phrases={"zero_grad": ("w.grad.zero()", "AttributeError", "Cell 28, line 2, in zero_grad"),
                 "final_loss": ("your `zero_grad` raised an error",)},
    ),
    # ------------------------------------------------------------------ loss
    Scenario(
        "loss_sum__4_of_10", scores("loss", "gradient", "final_loss"),
        overrides={"criterion": _fn(CRITERION, "return ((yhat - y) ** 2).sum()")},
        # the checks that run the loss with other steps blame it (checks/blame.py)
        misconceptions={"loss": "loss_sum", "gradient": "loss_sum", "final_loss": "loss_sum"},
        phrases={"gradient": ("what your `criterion` gives back",)},
    ),
    Scenario(
        "loss_absolute__4_of_10", scores("loss", "gradient", "final_loss"),
        overrides={"criterion": _fn(CRITERION, "return torch.mean(torch.abs(yhat - y))")},
        misconceptions={"loss": "loss_absolute", "gradient": "loss_absolute", "final_loss": "loss_absolute"},
    ),
    Scenario(
        "loss_square_of_mean__4_of_10", scores("loss", "gradient", "final_loss"),
        overrides={"criterion": _fn(CRITERION, "return torch.mean(yhat - y) ** 2")},
        misconceptions={"loss": "loss_square_of_mean", "gradient": "loss_square_of_mean",
                        "final_loss": "loss_square_of_mean"},
    ),
    Scenario(
        "loss_flattens_one_side_broadcast__4_of_10", scores("loss", "gradient", "final_loss"),
        overrides={"criterion": _fn(CRITERION, "return torch.mean((yhat.view(-1) - y) ** 2)")},
        misconceptions={"loss": "loss_broadcast", "gradient": "loss_broadcast", "final_loss": "loss_broadcast"},
        phrases={"loss": ("N×N",)},
    ),
    Scenario(
        # issue 29: its message was repeated under three checks and said "Fix the line named below" without it
        "criterion_syntax_error__4_of_10", scores("loss", "gradient", "final_loss"),
        overrides={"criterion": _fn(CRITERION, "return ((yhat - y) ** 2).mean(")},
        misconceptions={"loss": "syntax_error", "gradient": "syntax_error", "final_loss": "syntax_error"},
        phrases={"loss": ("has a syntax error at line 2", "\n\n        return ((yhat - y) ** 2).mean("),
                 "gradient": ("Not tested yet: this check runs your `criterion`",),
                 "final_loss": ("Not tested yet: this check runs your `criterion`",)},
        notes=("has a syntax error at line 2", "failed with NameError on it"),
    ),
    Scenario(
        "loss_item_float__4_of_10", scores("loss", "gradient", "final_loss"),
        overrides={"criterion": _fn(CRITERION, "return torch.mean((yhat - y) ** 2).item()")},
        # the loop fails in the provided code (`loss.item()` of a float): blamed on criterion, the error kept
        misconceptions={"loss": "loss_not_tensor", "gradient": "loss_not_tensor", "final_loss": "loss_not_tensor"},
        phrases={"loss": ("It returned a float",), "final_loss": ("'float' object has no attribute 'item'",)},
    ),
    Scenario(
        # an int64 placeholder used to crash the loss check, whose traceback then reached the student
        "loss_int_placeholder__4_of_10", scores("loss", "gradient", "final_loss"),
        overrides={"criterion": _fn(CRITERION, "return torch.tensor(0)")},
        misconceptions={"loss": "wrong_dtype", "gradient": "wrong_dtype", "final_loss": "wrong_dtype"},
        phrases={"loss": ("It returned an int64 tensor of shape ()",)},
    ),
    Scenario(
        "loss_numpy__4_of_10", scores("loss", "gradient", "final_loss"),
        overrides={"criterion": _fn(CRITERION, "return torch.mean((yhat - y) ** 2).detach().numpy()")},
        misconceptions={"loss": "loss_not_tensor", "gradient": "loss_not_tensor", "final_loss": "loss_not_tensor"},
        phrases={"loss": ("numpy.ndarray",)},
    ),
    # ------------------------------------------------------------------ forward
    Scenario(
        "forward_flattened_broadcast__5_of_10", scores("forward", "gradient", "final_loss"),
        overrides={"forward": _fn(FORWARD, "return (w * x).view(-1)")},
        # issue 29: the gradient check said "your loss is not the MSE"; it blames forward
        misconceptions={"forward": "forward_wrong_shape", "gradient": "forward_wrong_shape",
                        "final_loss": "forward_wrong_shape"},
        phrases={"forward": ("N×N", "got shape (1,)"), "gradient": ("what your `forward` gives back",)},
    ),
    Scenario(
        "forward_item_detached__5_of_10", scores("forward", "gradient", "final_loss"),
        overrides={"forward": _fn(FORWARD, "return w.item() * x")},
        misconceptions={"forward": "forward_detached", "gradient": "forward_detached", "final_loss": "forward_detached"},
    ),
    Scenario(
        "forward_ignores_w__5_of_10", scores("forward", "gradient", "final_loss"),
        overrides={"forward": _fn(FORWARD, "return -3.0 * x")},
        # one call of forward cannot show that it ignores w: the checks that run it with others say "wrong value"
        misconceptions={"forward": "forward_ignores_w", "gradient": "forward_wrong_value",
                        "final_loss": "forward_wrong_value"},
    ),
    Scenario(
        "forward_renamed_missing__5_of_10", scores("forward", "gradient", "final_loss"),
        overrides={"forward": _fn("def forward_pass(x, w):", "return w * x")},
        misconceptions={"forward": "missing_function", "gradient": "missing_function",
                        "final_loss": "missing_function"},
        phrases={"forward": ("Not found: `forward`",)},
        notes=("NameError",),
    ),
    # ------------------------------------------------------------------ the notebook as a whole
    Scenario(
        "toplevel_own_loop_interrupted__10_of_10", scores(),
        extra_cells=(_fn("def explore(w):", "while True:", "    w = w * 0.5") + "explore(1.0)\n",),
        notes=("Cell 3 (`def explore(w):`) ran past its time limit",),
        hangs=True,
    ),
    Scenario(
        "exception_before_functions__10_of_10", scores(),
        extra_cells=("import my_helpers_from_home  # not installed where grading happens\n",),
        notes=("Cell 3 (`import my_helpers_from_home", "raised `ModuleNotFoundError`"),
    ),
    # The contract allows w.grad = None after zero_grad (issue 2: "zeros or None are both right").
    Scenario(
        "zero_grad_sets_none__10_of_10", scores(),
        overrides={"zero_grad": _fn(ZERO_GRAD, "w.grad = None")},
    ),
    # ------------------------------------------------------------------ definitions the clean rooms once refused (issue 26)
    Scenario(
        # imports of standard modules before a step, a lambda default, a class with a builtin base
        "definitions_imports_lambda_default_error_class__10_of_10", scores(),
        overrides={
            "forward": "import statistics\nfrom fractions import Fraction\n\n" + _fn(FORWARD, "return w * x"),
            "criterion": _fn("def criterion(yhat, y, square=lambda d: d ** 2):", "return square(yhat - y).mean()"),
            "update": 'class StepError(Exception):\n    """update was called before backward()."""\n\n\n'
                      + _fn(UPDATE, "if w.grad is None:", "    raise StepError('call loss.backward() first')",
                            "w.data = w.data - lr * w.grad.data"),
        },
    ),
    Scenario(
        # Decided by the contract (README's table; the release's docstring "Returns None." and its
        # self-check `assert result is None`): update returns None. The provided loop ignores the
        # value, so training is right and only update's own check fails.
        "update_returns_w__8_of_10", scores("update"),
        overrides={"update": _fn(UPDATE, "w.data = w.data - lr * w.grad.data", "return w")},
        misconceptions={"update": "returns_value"},
    ),
]

BY_NAME = {s.name: s for s in SCENARIOS}
assert len(BY_NAME) == len(SCENARIOS), "scenario names must be unique"
