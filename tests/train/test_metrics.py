"""Metrics against scikit-learn and hand-computed values, fed in uneven batches."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

import deepbox
from deepbox.train import F1, Accuracy, ConfusionMatrix, MeanAbsoluteError, MeanSquaredError, Precision, Recall
from deepbox.train.metrics import get_metric


def _feed(metric, logits, target, splits=(0, 7, 30, 31, 80)):
    """Update in uneven batches, as tensors, so the counts must add up across them."""
    metric.reset()
    bounds = list(splits) + [len(target)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        metric.update(deepbox.tensor(logits[a:b]), deepbox.tensor(target[a:b]))
    return metric.compute()


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(120, 5)).astype(np.float32)
    target = rng.integers(0, 5, size=120)
    target[:40] = logits[:40].argmax(1)  # some right answers, so the values are not all near chance
    return logits, target


def test_hand_computed_example():
    # predictions 0,1,1,2 for targets 0,1,2,2: TP per class 1,1,1; class 1 predicted twice, class 2 once
    out = deepbox.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 5.0, 0], [0, 0, 5.0]])
    tgt = deepbox.tensor([0, 1, 2, 2])
    acc, cm, p, r, f = Accuracy(), ConfusionMatrix(3), Precision(), Recall(), F1()
    for m in (acc, cm, p, r, f):
        m.update(out, tgt)
    assert acc.compute() == 0.75
    assert cm.compute().tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert p.compute() == pytest.approx((1 + 0.5 + 1) / 3)
    assert r.compute() == pytest.approx((1 + 1 + 0.5) / 3)
    assert f.compute() == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    top = Accuracy(top_k=5)  # k >= C: every sample counts
    top.update(out, tgt)
    assert top.compute() == 1.0


def test_accuracy_and_confusion_against_sklearn(data):
    logits, target = data
    pred = logits.argmax(1)
    assert _feed(Accuracy(), logits, target) == pytest.approx(skm.accuracy_score(target, pred))
    np.testing.assert_array_equal(_feed(ConfusionMatrix(5), logits, target),
                                  skm.confusion_matrix(target, pred, labels=range(5)))


@pytest.mark.parametrize("k", [2, 3, 4])
def test_top_k_against_sklearn(data, k):
    logits, target = data
    expected = skm.top_k_accuracy_score(target, logits, k=k, labels=range(5))
    assert _feed(Accuracy(top_k=k), logits, target) == pytest.approx(expected)


@pytest.mark.parametrize("cls, fn", [(Precision, skm.precision_score), (Recall, skm.recall_score),
                                     (F1, skm.f1_score)])
@pytest.mark.parametrize("average", ["macro", "micro"])
def test_precision_recall_f1_against_sklearn(data, cls, fn, average):
    logits, target = data
    pred = logits.argmax(1)
    expected = fn(target, pred, average=average, zero_division=0)
    assert _feed(cls(average=average), logits, target) == pytest.approx(expected, abs=1e-12)
    assert _feed(cls(num_classes=5, average=average), logits, target) == pytest.approx(expected, abs=1e-12)


def test_macro_with_a_class_never_predicted():
    target = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 0, 1, 1, 1, 1])  # class 2 never predicted: precision 0 for it, as sklearn with zero_division=0
    for cls, fn in ((Precision, skm.precision_score), (Recall, skm.recall_score), (F1, skm.f1_score)):
        m = cls()
        m.update(pred, target)
        assert m.compute() == pytest.approx(fn(target, pred, average="macro", zero_division=0))


def test_regression_metrics_against_sklearn():
    rng = np.random.default_rng(2)
    out, tgt = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    assert _feed(MeanSquaredError(), out, tgt) == pytest.approx(skm.mean_squared_error(tgt, out), rel=1e-12)
    assert _feed(MeanAbsoluteError(), out, tgt) == pytest.approx(skm.mean_absolute_error(tgt, out), rel=1e-12)


def test_segmentation_shaped_outputs():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(4, 3, 5, 6))
    target = rng.integers(0, 3, size=(4, 5, 6))
    acc = Accuracy()
    acc.update(logits, target)
    assert acc.compute() == pytest.approx(skm.accuracy_score(target.ravel(), logits.argmax(1).ravel()))


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        Accuracy(top_k=0)
    with pytest.raises(ValueError, match=r"outputs of shape \(4, 3\) and targets of shape \(5,\)"):
        Accuracy().update(np.zeros((4, 3)), np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match="expected classes 0..2"):
        ConfusionMatrix(3).update(np.array([0, 3]), np.array([0, 1]))
    with pytest.raises(ValueError, match="average must be 'macro' or 'micro'"):
        F1(average="weighted")
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        get_metric("auc")
    assert isinstance(get_metric("top5"), Accuracy) and get_metric("top5").top_k == 5
