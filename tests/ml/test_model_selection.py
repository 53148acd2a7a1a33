"""train_test_split, KFold, StratifiedKFold, cross_val_score: sizes as in scikit-learn, stratification, determinism."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn import datasets, linear_model, preprocessing
from sklearn import model_selection as skms

import deepbox
from deepbox import ml


@pytest.mark.parametrize("n,test_size,train_size", [(100, None, None), (101, 0.3, None), (101, None, 0.7),
                                                    (50, 7, None), (50, 0.2, 0.5), (10, None, 3), (33, 0.15, 20)])
def test_split_sizes_equal_sklearn(n, test_size, train_size):
    X = np.arange(2 * n).reshape(n, 2)
    a_tr, a_te = ml.train_test_split(X, test_size=test_size, train_size=train_size, random_state=0)
    s_tr, s_te = skms.train_test_split(X, test_size=test_size, train_size=train_size, random_state=0)
    assert (len(a_tr), len(a_te)) == (len(s_tr), len(s_te))
    rows = np.concatenate([a_tr[:, 0], a_te[:, 0]])
    assert len(np.unique(rows)) == len(rows), "train and test do not overlap"


def test_split_keeps_rows_aligned_types_and_is_deterministic():
    X = np.arange(60).reshape(30, 2)
    y = np.arange(30)
    t = deepbox.arange(30)
    names = [f"s{i}" for i in range(30)]
    Xtr, Xte, ytr, yte, ttr, tte, ntr, nte = ml.train_test_split(X, y, t, names, random_state=4)
    assert np.array_equal(Xtr[:, 0] // 2, ytr) and np.array_equal(Xte[:, 0] // 2, yte)
    assert isinstance(ttr, deepbox.Tensor) and np.array_equal(ttr.numpy(), ytr)
    assert ntr == [f"s{i}" for i in ytr] and nte == [f"s{i}" for i in yte]
    again = ml.train_test_split(X, y, random_state=4)
    assert np.array_equal(again[2], ytr)
    other = ml.train_test_split(X, y, random_state=5)
    assert not np.array_equal(other[2], ytr)
    a, b = ml.train_test_split(y, shuffle=False, test_size=0.2)
    assert np.array_equal(a, np.arange(24)) and np.array_equal(b, np.arange(24, 30))


def test_stratified_split_keeps_proportions():
    _, y = datasets.load_iris(return_X_y=True)
    y = y[:130]  # 50 / 50 / 30
    tr, te = ml.train_test_split(y, test_size=0.2, stratify=y, random_state=0)
    s_tr, s_te = skms.train_test_split(y, test_size=0.2, stratify=y, random_state=0)
    assert len(te) == len(s_te) == 26
    np.testing.assert_array_equal(np.bincount(te), np.bincount(s_te))  # [10, 10, 6]
    np.testing.assert_array_equal(np.bincount(tr), np.bincount(s_tr))
    y2 = np.array([0] * 7 + [1] * 5 + [2] * 9)
    tr, te = ml.train_test_split(y2, test_size=0.33, stratify=y2, random_state=1)
    s_tr, s_te = skms.train_test_split(y2, test_size=0.33, stratify=y2, random_state=1)
    assert len(te) == len(s_te)
    assert np.abs(np.bincount(te, minlength=3) - np.bincount(y2) * len(te) / len(y2)).max() < 1


def test_split_errors():
    with pytest.raises(ValueError, match="same number of samples"):
        ml.train_test_split(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="test_size=1.5"):
        ml.train_test_split(np.zeros(10), test_size=1.5)
    with pytest.raises(ValueError, match="exceed"):
        ml.train_test_split(np.zeros(10), test_size=6, train_size=5)
    with pytest.raises(ValueError, match="at least 2 samples of every class"):
        ml.train_test_split(np.zeros(5), stratify=np.array([0, 0, 0, 0, 1]))
    with pytest.raises(ValueError, match="shuffle=True"):
        ml.train_test_split(np.zeros(6), shuffle=False, stratify=np.zeros(6))


@pytest.mark.parametrize("n,k", [(10, 5), (11, 3), (7, 7), (100, 4)])
def test_kfold_unshuffled_equals_sklearn(n, k):
    X = np.zeros((n, 1))
    ours = list(ml.KFold(k).split(X))
    ref = list(skms.KFold(k).split(X))
    assert len(ours) == k
    for (a_tr, a_te), (s_tr, s_te) in zip(ours, ref):
        np.testing.assert_array_equal(a_tr, s_tr)
        np.testing.assert_array_equal(a_te, s_te)


def test_kfold_shuffled_partitions_and_is_deterministic():
    X = np.zeros((23, 1))
    folds = list(ml.KFold(4, shuffle=True, random_state=0).split(X))
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests.tolist()) == list(range(23))
    assert [len(te) for _, te in folds] == [6, 6, 6, 5]
    for tr, te in folds:
        assert sorted(np.concatenate([tr, te]).tolist()) == list(range(23))
    again = list(ml.KFold(4, shuffle=True, random_state=0).split(X))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    assert not np.array_equal(tests, np.arange(23))
    with pytest.raises(ValueError, match="n_splits=4 greater than"):
        list(ml.KFold(4).split(np.zeros((3, 1))))
    with pytest.raises(ValueError, match="n_splits must be"):
        ml.KFold(1)


def test_stratified_kfold_balances_classes():
    y = np.array([0] * 20 + [1] * 10 + [2] * 5)
    folds = list(ml.StratifiedKFold(5, shuffle=True, random_state=0).split(np.zeros(35), y))
    for _, te in folds:
        np.testing.assert_array_equal(np.bincount(y[te], minlength=3), [4, 2, 1])
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(35))


def test_cross_val_score_matches_sklearn_with_the_same_folds():
    X, y = datasets.load_diabetes(return_X_y=True)
    ours = ml.cross_val_score(ml.LinearRegression(alpha=0.5), X, y, cv=ml.KFold(5))
    ref = skms.cross_val_score(linear_model.Ridge(alpha=0.5), X, y, cv=skms.KFold(5))
    np.testing.assert_allclose(ours, ref, rtol=1e-9)
    Xc, yc = datasets.load_breast_cancer(return_X_y=True)
    Xc = preprocessing.StandardScaler().fit_transform(Xc)
    acc = ml.cross_val_score(ml.LogisticRegression(C=0.5), Xc, yc, cv=4)
    ref = skms.cross_val_score(linear_model.LogisticRegression(C=0.5), Xc, yc, cv=4)
    assert acc.shape == (4,) and abs(acc.mean() - ref.mean()) < 0.01
    custom = ml.cross_val_score(ml.LinearRegression(), X, y, cv=3, scoring=lambda est, Xt, yt: -1.0)
    np.testing.assert_array_equal(custom, [-1.0, -1.0, -1.0])
