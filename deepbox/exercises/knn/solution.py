"""Exercise 'knn': k-nearest-neighbour classification with a vectorised distance matrix, on NumPy arrays.

Write the blocks between '# >>> YOUR CODE' and '# <<< END', then run
    deepbox exercise check knn               (add --train to classify MNIST digits with your kNN)
"""
import numpy as np


def compute_distances(X_train, X_test):
    """Euclidean distances, dists[i, j] = ||X_test[i] - X_train[j]||, without Python loops.

    Args:
        X_train: (n_train, D); X_test: (n_test, D).
    Returns:
        dists: (n_test, n_train).
    """
    # >>> YOUR CODE (about 4 lines: |a - b|^2 = |a|^2 + |b|^2 - 2 a.b)
    sq = (X_test ** 2).sum(axis=1)[:, None] + (X_train ** 2).sum(axis=1)[None, :] - 2 * X_test @ X_train.T
    dists = np.sqrt(np.maximum(sq, 0))      # rounding can leave tiny negative numbers
    # <<< END
    return dists


def predict_labels(dists, y_train, k=1):
    """The most common label among each test point's k nearest training points; ties go to the smallest label.

    Args:
        dists: (n_test, n_train); y_train: (n_train,) integer labels; k: how many neighbours vote.
    Returns:
        y_pred: (n_test,) integer labels.
    """
    # >>> YOUR CODE (about 5 lines)
    nearest = np.argsort(dists, axis=1, kind="stable")[:, :k]
    votes = y_train[nearest]                                    # (n_test, k)
    n_classes = int(y_train.max()) + 1
    counts = np.stack([np.bincount(v, minlength=n_classes) for v in votes])
    y_pred = counts.argmax(axis=1)                              # argmax returns the first (smallest) on ties
    # <<< END
    return y_pred
