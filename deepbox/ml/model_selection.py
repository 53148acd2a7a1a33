"""Splitting data for honest evaluation: train_test_split, KFold, StratifiedKFold, cross_val_score.

Sizes follow scikit-learn: a fractional ``test_size`` rounds the test set up (ceil) and a fractional
``train_size`` rounds down (floor); K-fold gives the first ``n % k`` folds one extra sample. Shuffling
uses deepbox's ``Generator`` seeded with ``random_state``, so the same seed gives the same split.
"""
from __future__ import annotations

import math
import numbers

import deepbox
from deepbox import backend
from deepbox.ml.base import clone, to_array
from deepbox.tensor import Tensor, _make

xp = backend.xp


def _permutation(n: int, random_state) -> object:
    gen = deepbox.Generator().manual_seed(0 if random_state is None else int(random_state))
    if random_state is None:
        gen.seed()  # a fresh, nondeterministic order when no seed is given
    return deepbox.randperm(n, generator=gen)._data


def _n_samples(arrays) -> int:
    if not arrays:
        raise ValueError("train_test_split: at least one array is required")
    lens = [len(a) for a in arrays]
    if len(set(lens)) != 1:
        raise ValueError(f"train_test_split: all arrays must have the same number of samples, got lengths {lens}")
    return lens[0]


def _split_sizes(n: int, test_size, train_size) -> tuple[int, int]:
    def check(v, name):
        if v is None:
            return
        if isinstance(v, numbers.Integral) and not isinstance(v, bool):
            if not 0 < v < n:
                raise ValueError(f"train_test_split: {name}={v} must be between 1 and n_samples - 1 = {n - 1}")
        elif isinstance(v, numbers.Real):
            if not 0.0 < v < 1.0:
                raise ValueError(f"train_test_split: {name}={v} must be a fraction in (0, 1) or an int count")
        else:
            raise TypeError(f"train_test_split: {name} must be an int, a float or None, got {type(v).__name__}")

    check(test_size, "test_size")
    check(train_size, "train_size")
    if test_size is None and train_size is None:
        test_size = 0.25
    n_test = None if test_size is None else (math.ceil(test_size * n) if isinstance(test_size, float)
                                             else int(test_size))
    n_train = None if train_size is None else (math.floor(train_size * n) if isinstance(train_size, float)
                                               else int(train_size))
    if n_test is None:
        n_test = n - n_train
    if n_train is None:
        n_train = n - n_test
    if n_train + n_test > n:
        raise ValueError(f"train_test_split: train ({n_train}) + test ({n_test}) samples exceed the {n} available")
    if n_train == 0 or n_test == 0:
        raise ValueError(f"train_test_split: with {n} samples, test_size={test_size} and train_size={train_size} "
                         "leave an empty train or test set")
    return n_train, n_test


def _take(a, idx):
    if isinstance(a, Tensor):
        return a[_make(idx)]
    if isinstance(a, list):
        return [a[i] for i in idx.tolist()]
    return a[idx]


def _stratified_indices(labels, n_train, n_test, random_state):
    """Per class, test counts proportional to the class's share (largest remainders), classes shuffled within."""
    classes, codes = xp.unique(labels, return_inverse=True)
    codes = codes.reshape(-1)
    counts = xp.bincount(codes, minlength=len(classes))
    if counts.min() < 2:
        raise ValueError(f"train_test_split: stratify needs at least 2 samples of every class; class "
                         f"{classes[counts.argmin()]!r} has {counts.min()}")
    if n_test < len(classes) or n_train < len(classes):
        raise ValueError(f"train_test_split: stratify needs train and test sets at least as large as the number "
                         f"of classes ({len(classes)}), got {n_train} and {n_test}")
    n = len(labels)
    exact = counts * n_test / n
    test_per = xp.floor(exact).astype(xp.int64)
    # hand out the remaining test places to the classes with the largest fractional parts (ties: larger class)
    order = sorted(range(len(classes)), key=lambda c: (-(exact[c] - test_per[c]), -counts[c], c))
    for c in order[: n_test - int(test_per.sum())]:
        test_per[c] += 1
    perm = _permutation(n, random_state)
    train, test = [], []
    for c in range(len(classes)):
        members = perm[codes[perm] == c]
        test.append(members[: test_per[c]])
        train.append(members[test_per[c]:])
    train, test = xp.concatenate(train), xp.concatenate(test)
    perm2 = _permutation(len(train), None if random_state is None else int(random_state) + 1)
    train = train[perm2][:n_train]
    perm3 = _permutation(len(test), None if random_state is None else int(random_state) + 2)
    return train, test[perm3]


def train_test_split(*arrays, test_size: float | int | None = None, train_size: float | int | None = None,
                     random_state: int | None = None, shuffle: bool = True, stratify=None) -> list:
    """Split arrays (or tensors, or lists) with the same first dimension into train and test parts.

    Args:
        test_size: a fraction of the samples (rounded up) or a count; default 0.25 when ``train_size`` is None
            too, else the complement of ``train_size``.
        train_size: a fraction (rounded down) or a count; default the complement of ``test_size``.
        random_state: seed for the shuffle; the same seed gives the same split.
        shuffle: shuffle before splitting; False takes the first samples for training and the next for testing.
        stratify: labels whose class proportions both parts keep (needs ``shuffle=True``).

    Returns:
        ``[a_train, a_test, b_train, b_test, ...]``, each the type of its input.
    """
    n = _n_samples(arrays)
    n_train, n_test = _split_sizes(n, test_size, train_size)
    if not shuffle:
        if stratify is not None:
            raise ValueError("train_test_split: stratified splitting needs shuffle=True")
        train, test = xp.arange(n_train), xp.arange(n_train, n_train + n_test)
    elif stratify is not None:
        labels = to_array(stratify, "stratify")
        if len(labels) != n:
            raise ValueError(f"train_test_split: stratify has {len(labels)} labels for {n} samples")
        train, test = _stratified_indices(labels, n_train, n_test, random_state)
    else:
        perm = _permutation(n, random_state)
        test, train = perm[:n_test], perm[n_test:n_test + n_train]
    out = []
    for a in arrays:
        out.extend([_take(a, train), _take(a, test)])
    return out


class KFold:
    """K-fold cross-validation: each of ``n_splits`` consecutive folds is the test set once.

    Args:
        n_splits: number of folds (>= 2). The first ``n % n_splits`` folds get one extra sample.
        shuffle: shuffle the samples before cutting folds. random_state: seed for that shuffle.
    """

    def __init__(self, n_splits: int = 5, *, shuffle: bool = False, random_state: int | None = None):
        if not (isinstance(n_splits, numbers.Integral) and n_splits >= 2):
            raise ValueError(f"KFold: n_splits must be an int >= 2, got {n_splits!r}")
        if not shuffle and random_state is not None:
            raise ValueError("KFold: random_state has no effect without shuffle=True; set shuffle=True or leave "
                             "random_state None")
        self.n_splits = int(n_splits)
        self.shuffle = shuffle
        self.random_state = random_state

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        return self.n_splits

    def _check_n(self, n):
        if self.n_splits > n:
            raise ValueError(f"{type(self).__name__}: cannot have n_splits={self.n_splits} greater than the number "
                             f"of samples n_samples={n}")

    def split(self, X, y=None, groups=None):
        """Yield ``(train_indices, test_indices)`` (int64 arrays) for each fold."""
        n = len(X)
        self._check_n(n)
        idx = _permutation(n, self.random_state) if self.shuffle else xp.arange(n)
        sizes = xp.full(self.n_splits, n // self.n_splits, xp.int64)
        sizes[: n % self.n_splits] += 1
        start = 0
        for s in sizes.tolist():
            test = idx[start:start + s]
            train = xp.concatenate([idx[:start], idx[start + s:]])
            yield train, test
            start += s

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_splits={self.n_splits}, random_state={self.random_state}, " \
               f"shuffle={self.shuffle})"


class StratifiedKFold(KFold):
    """K-fold whose folds keep the class proportions of ``y``: each class is dealt round-robin over the folds."""

    def split(self, X, y, groups=None):
        labels = to_array(y, "y")
        n = len(labels)
        self._check_n(n)
        _, codes = xp.unique(labels, return_inverse=True)
        codes = codes.reshape(-1)
        if xp.bincount(codes).max() < self.n_splits:
            import warnings

            warnings.warn(f"StratifiedKFold: the largest class has fewer than n_splits={self.n_splits} members",
                          stacklevel=2)
        order = _permutation(n, self.random_state) if self.shuffle else xp.arange(n)
        fold_of = xp.empty(n, xp.int64)
        offset = 0
        for c in range(codes.max() + 1):
            members = order[codes[order] == c]
            # continue the round-robin where the previous class stopped, so fold sizes differ by at most one
            fold_of[members] = (xp.arange(len(members)) + offset) % self.n_splits
            offset += len(members)
        for f in range(self.n_splits):
            yield xp.flatnonzero(fold_of != f), xp.flatnonzero(fold_of == f)


def cross_val_score(estimator, X, y, *, cv=5, scoring=None) -> object:
    """Score a fresh clone of ``estimator`` on each fold: returns an array of ``n_splits`` scores.

    Args:
        cv: an int (``StratifiedKFold`` for classifiers, ``KFold`` otherwise, unshuffled, as in scikit-learn)
            or a splitter with ``split(X, y)``.
        scoring: None (the estimator's ``score``) or a callable ``scoring(estimator, X_test, y_test) -> float``.
    """
    from deepbox.ml.base import ClassifierMixin

    if isinstance(cv, numbers.Integral):
        cv = StratifiedKFold(cv) if isinstance(estimator, ClassifierMixin) else KFold(cv)
    if not hasattr(cv, "split"):
        raise TypeError(f"cross_val_score: cv must be an int or a splitter with split(X, y), got {type(cv).__name__}")
    scores = []
    for train, test in cv.split(X, y):
        est = clone(estimator).fit(_take(X, train), _take(y, train))
        Xt, yt = _take(X, test), _take(y, test)
        scores.append(float(scoring(est, Xt, yt) if scoring is not None else est.score(Xt, yt)))
    return xp.asarray(scores)
