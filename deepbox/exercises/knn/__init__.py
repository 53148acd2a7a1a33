"""Exercise 'knn': the vectorised distance matrix and the k-nearest-neighbour vote, against deepbox.ml."""
from __future__ import annotations

import os
import time

import numpy as np

from deepbox.exercises.base import Exercise, Part
from deepbox.exercises.checking import CheckFailed, Mistake


def _ref_dists(X_train, X_test):
    from deepbox.ml import KNeighborsClassifier

    m = KNeighborsClassifier(n_neighbors=len(X_train)).fit(X_train, np.zeros(len(X_train), dtype=np.int64))
    d, idx = m.kneighbors(X_test, n_neighbors=len(X_train))
    d, idx = np.asarray(d), np.asarray(idx)
    out = np.empty_like(d)
    np.put_along_axis(out, idx, d, axis=1)
    return out


def _ref_predict(X_train, y_train, X_test, k):
    from deepbox.ml import KNeighborsClassifier

    return np.asarray(KNeighborsClassifier(n_neighbors=k).fit(X_train, y_train).predict(X_test))


def _points(r, n_train, n_test, d):
    return r.standard_normal((n_train, d)), r.standard_normal((n_test, d))


def _check_distances(ck):
    r = np.random.default_rng(24)
    mistakes = [Mistake("dists", "take the square root: these are squared distances",
                        lambda tr, te: _ref_dists(tr, te) ** 2)]
    cases = [("hand-made", np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0]]), np.array([[0.0, 0.0], [3.0, 0.0]])),
             ("random 20 x 5 against 7", *_points(r, 20, 7, 5)),
             ("one test point", *_points(r, 9, 1, 3)),
             ("a test point equal to a training point", *(lambda a: (a, a[:4].copy()))(r.standard_normal((6, 784))))]
    worst = 0.0
    for label, tr, te in cases:
        got = ck.call("compute_distances", tr.copy(), te.copy())
        exp = _ref_dists(tr, te)
        if isinstance(got, np.ndarray) and got.shape == exp.shape:
            # |a|^2 + |b|^2 - 2ab loses the digits of tiny distances: judge them against the typical distance
            close = np.abs(got - exp) <= 1e-6 * float(exp.max())
            got = np.where(close, exp, got)
        try:
            worst = max(worst, ck.expect_close("dists", got, exp, tol=1e-6, where=f" (case '{label}')",
                                               mistakes=mistakes, mistake_args=(tr, te)))
        except CheckFailed as f:
            f.what = "distances against KNeighborsClassifier.kneighbors: " + f.what
            if f.hint is None and np.any(np.isnan(np.asarray(got, dtype=float))):
                f.hint = "NaN: rounding made some squared distances slightly negative; clip them at 0 before sqrt"
            elif f.hint and "transpose" in f.hint:
                f.hint = "dists is (n_test, n_train): one row per test point"
            raise
    # Python loops over the points are what this exercise replaces: time a moderate case
    tr, te = _points(r, 2000, 200, 64)
    t0 = time.perf_counter()
    ck.call("compute_distances", tr, te)
    secs = time.perf_counter() - t0
    if secs > 2.0:
        raise CheckFailed(f"compute_distances took {secs:.1f} s for 200 x 2000 points of 64 features",
                          hint="no Python loops: |a|^2 + |b|^2 - 2 a.b is two sums and one matrix product")
    ck.passed(f"distances against KNeighborsClassifier.kneighbors: {len(cases)} cases; worst relative error "
              f"{worst:.1e}; 200 x 2000 points in {secs * 1000:.0f} ms")


def _check_predict(ck):
    r = np.random.default_rng(25)
    tr, te = _points(r, 30, 10, 4)
    y = r.integers(0, 4, 30)
    cases = [("k=1", tr, te, y, 1), ("k=3", tr, te, y, 3), ("k=5", tr, te, y, 5),
             ("a tie between labels 2 and 0, k=2", np.array([[1.0], [2.0], [3.0], [4.0]]), np.array([[0.0], [5.0]]),
              np.array([2, 0, 1, 1]), 2),
             ("hidden", *_points(r, 40, 15, 6), r.integers(0, 10, 40), 7)]
    for label, X_train, X_test, y_train, k in cases:
        dists = _ref_dists(X_train, X_test)
        got = ck.call("predict_labels", dists.copy(), y_train.copy(), k=k)
        exp = _ref_predict(X_train, y_train, X_test, k)
        got_a = ck.expect_array("y_pred", got)
        ck.expect_shape("y_pred", got_a, exp.shape, f" (case '{label}')" if label != "hidden" else " (a hidden case)")
        if not np.array_equal(got_a.astype(np.int64), exp):
            bad = int(np.flatnonzero(got_a != exp)[0])
            counts = np.bincount(y_train[np.argsort(dists[bad], kind="stable")[:k]])
            if label.startswith("a tie") or (counts == counts.max()).sum() > 1:
                hint = "ties go to the smallest label: np.bincount(votes).argmax() returns the first maximum"
            elif k > 1 and np.array_equal(got_a, y_train[np.argmin(dists, axis=1)]):
                hint = "all k nearest neighbours vote, not just the nearest one"
            else:
                hint = "sort each test point's row of distances (np.argsort(dists, axis=1)) and let its k nearest vote"
            if label == "hidden":
                raise CheckFailed("predict_labels: a hidden case is wrong (its inputs are not shown)", hint=hint)
            raise CheckFailed(f"predict_labels (case '{label}'): test point {bad} got label {got_a[bad]}, "
                              f"expected {exp[bad]}", hint=hint)
    ck.passed(f"predict_labels against KNeighborsClassifier.predict: {len(cases) - 1} cases and a hidden one "
              "(k = 1, 3, 5, 7, ties)")
    ck.passed("hidden cases: 1")


def _train(ex, student, parts, train_size=None, epochs=None, verbose=True):
    """Classify MNIST-10k test digits with the student's kNN and with deepbox.ml's."""
    from deepbox.exercises.training import load_mnist
    from deepbox.ml import KNeighborsClassifier

    n = int(train_size) if train_size else 5000
    x, y, xt, yt = load_mnist(n, 500)
    x, xt = x.reshape(len(x), -1).astype(np.float64), xt.reshape(len(xt), -1).astype(np.float64)
    rows = []
    runs = [("deepbox.ml.KNeighborsClassifier", lambda: KNeighborsClassifier(n_neighbors=3).fit(x, y).predict(xt)),
            ("yours", lambda: student.predict_labels(student.compute_distances(x, xt), y, k=3))]
    if verbose:
        print(f"\nknn --train: k=3 on {len(x)} MNIST-10k training digits, {len(xt)} test digits")
        print(f"  {'run':<34} {'test accuracy':>13} {'time':>10}")
    for label, run in runs:
        t0 = time.perf_counter()
        pred = np.asarray(run())
        secs = time.perf_counter() - t0
        acc = float((pred == yt).mean())
        rows.append({"run": label, "accuracy": acc, "seconds": secs})
        if verbose:
            print(f"  {label:<34} {acc:>13.4f} {secs:>9.2f}s")
    return rows


EXERCISE = Exercise(
    name="knn", lecture="2", summary="k-nearest neighbours: a loop-free distance matrix and the majority vote",
    parts=[Part("distances (compute_distances)", ("compute_distances",), _check_distances),
           Part("vote (predict_labels)", ("predict_labels",), _check_predict)],
    folder=os.path.dirname(os.path.abspath(__file__)), train=_train)
