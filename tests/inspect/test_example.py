"""The docs' walk-through: without batch norm a deep sigmoid MLP's gradients vanish towards the input."""
from __future__ import annotations

from deepbox.inspect.server import check_run
from tests.examples.runner import run


def test_deep_sigmoid_gradients_vanish_without_batch_norm(tmp_path):
    r, out = run("l07_inspect_deep_sigmoid", tmp_path)
    plain, bn = r["plain"], r["batchnorm"]
    assert len(plain["gradient_norms"]) == 9  # 8 hidden layers and the output layer
    # each sigmoid passes back at most 1/4 of the gradient: the first layer gets orders of magnitude less
    assert plain["first_to_last"] < 1e-3
    assert bn["first_to_last"] > 1e-2
    assert bn["final_train_loss"] < plain["final_train_loss"] - 0.3
    check_run(str(out / "plain"))
    check_run(str(out / "batchnorm"))
