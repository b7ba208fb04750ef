"""update(w, lr): w ← w − lr·w.grad, in place on the caller's tensor, which stays a leaf that
requires grad and has no grad_fn."""
from autograder.checks.show import case, close
from autograder.feedback.misconceptions import Feedback


def test_update(student, hidden, tol):
    for _ in range(3):
        w = hidden.uniform(-10.0, 10.0)
        grad = hidden.uniform(-20.0, 20.0)
        lr = hidden.scalar(0.01, 0.5)
        seen = student.probe("update", step="update(w, lr)", w=w, lr=lr, grad=grad)
        expected = w - lr * grad
        got = seen["w_after"]
        if got.numel() == 0:
            raise Feedback("update_wrong_value", case(w=w, lr=lr, grad=grad, expected_w=expected) + "; got an empty w")
        example = case(w=w, lr=lr, grad=grad, expected_w=expected) + f"; got w = {got.reshape(-1)[0].item():.6g}"
        if got.shape != w.shape:
            raise Feedback("update_shape", example + f" with shape {tuple(got.shape)}")
        if not close(got, expected, tol):
            for misconception, value in (
                ("update_rebinds", w),
                ("update_sign", w + lr * grad),
                ("update_no_lr", w - grad),
            ):
                if close(got, value, tol):
                    raise Feedback(misconception, example)
            raise Feedback("update_wrong_value", example)
        if not (seen["is_leaf"] and seen["requires_grad"]) or seen["has_grad_fn"]:
            state = f"is_leaf={seen['is_leaf']}, requires_grad={seen['requires_grad']}, has grad_fn={seen['has_grad_fn']}"
            raise Feedback("update_not_leaf", example, f"After update: {state}.")
