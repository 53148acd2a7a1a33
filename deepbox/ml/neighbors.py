"""k-nearest-neighbour classification: the label vote of the k closest training samples.

Distances are computed one chunk of queries at a time, so memory stays bounded for large data:
Euclidean distances by the expansion ‖q - x‖² = ‖q‖² - 2 q·x + ‖x‖² (one matrix product per chunk),
Manhattan distances by broadcasting |q - x| over a chunk sized to a memory budget.
Among equally distant training samples the one that comes first in the training data is taken first.
The k distances returned are recomputed directly from the differences, so they are exact (0 for a query
that coincides with a training sample).
"""
from __future__ import annotations

import deepbox
from deepbox import backend
from deepbox.ml.base import BaseEstimator, ClassifierMixin, check_X, check_y, encode_labels, like_input
from deepbox.tensor import _make

xp = backend.xp

_METRICS = ("euclidean", "manhattan")
_WEIGHTS = ("uniform", "distance")
_CHUNK_BYTES = 64 * 2**20  # working memory per chunk of queries


class KNeighborsClassifier(ClassifierMixin, BaseEstimator):
    """Classify each sample by the labels of its ``n_neighbors`` nearest training samples.

    Args:
        n_neighbors: k, the number of neighbours that vote.
        weights: 'uniform' (one vote each) or 'distance' (votes weighted by 1/distance; a training sample at
            distance 0 takes the whole vote, shared with any others at distance 0).
        metric: 'euclidean' or 'manhattan'.
        chunk_size: queries per distance block; None sizes blocks to about 64 MiB of working memory.

    Ties between classes go to the class that sorts first, as in scikit-learn.

    Shape: X ``(n_samples, n_features)``, y ``(n_samples,)``.
    """

    def __init__(self, n_neighbors: int = 5, *, weights: str = "uniform", metric: str = "euclidean",
                 chunk_size: int | None = None):
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.metric = metric
        self.chunk_size = chunk_size

    def fit(self, X, y) -> KNeighborsClassifier:
        """Store the training data (kNN learns nothing else); returns the estimator."""
        if not (isinstance(self.n_neighbors, int) and self.n_neighbors >= 1):
            raise ValueError(f"KNeighborsClassifier: n_neighbors must be an int >= 1, got {self.n_neighbors!r}")
        if self.weights not in _WEIGHTS:
            raise ValueError(f"KNeighborsClassifier: weights must be one of {_WEIGHTS}, got {self.weights!r}")
        if self.metric not in _METRICS:
            raise ValueError(f"KNeighborsClassifier: metric must be one of {_METRICS}, got {self.metric!r}")
        if self.chunk_size is not None and not (isinstance(self.chunk_size, int) and self.chunk_size >= 1):
            raise ValueError(f"KNeighborsClassifier: chunk_size must be an int >= 1 or None, got {self.chunk_size!r}")
        X = check_X(X)
        y = check_y(y, X.shape[0])
        self.classes_, codes = encode_labels(y)
        self._X = _make(X)
        self._sq = (self._X * self._X).sum(1)  # ‖x‖² of every training sample, reused by every query
        self._codes = codes
        self.n_features_in_ = X.shape[1]
        self.n_samples_fit_ = X.shape[0]
        return self

    def _chunk(self, n_features: int) -> int:
        if self.chunk_size is not None:
            return self.chunk_size
        per_query = self.n_samples_fit_ * 8 * (n_features if self.metric == "manhattan" else 4)
        return max(1, _CHUNK_BYTES // per_query)

    def _distances(self, Q):
        """Distances ``(n_queries, n_train)`` from the queries of one chunk to every training sample."""
        if self.metric == "euclidean":
            sq = (Q * Q).sum(1, keepdim=True) - 2 * (Q @ self._X.T) + self._sq
            return sq.clamp_(min=0).sqrt_()
        return (Q.unsqueeze(1) - self._X.unsqueeze(0)).abs().sum(2)

    def kneighbors(self, X=None, n_neighbors: int | None = None, return_distance: bool = True):
        """The ``n_neighbors`` nearest training samples of each query, nearest first.

        Returns ``(distances, indices)`` of shape ``(n_queries, k)`` (only indices with
        ``return_distance=False``), as the type of ``X``.
        """
        self._check_fitted("_X")
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        if not 1 <= k <= self.n_samples_fit_:
            raise ValueError(f"KNeighborsClassifier: expected n_neighbors <= n_samples_fit ({self.n_samples_fit_}), "
                             f"got {k}")
        A = check_X(self._X._data if X is None else X, n_features=self.n_features_in_)
        if A.dtype != self._X._data.dtype:
            A = A.astype(xp.result_type(A.dtype, self._X._data.dtype))
        step = self._chunk(A.shape[1])
        dists, idxs = [], []
        with deepbox.no_grad():
            for start in range(0, A.shape[0], step):
                D = self._distances(_make(A[start:start + step]).to(self._X.dtype))
                # topk sorts stably: among equal distances the earlier training sample comes first
                top = deepbox.topk(D, k, dim=1, largest=False)
                ind = top.indices._data
                if self.metric == "euclidean":
                    # the expansion loses digits to cancellation (a point's distance to itself comes out ~1e-8,
                    # not 0): recompute the k chosen distances directly
                    diff = A[start:start + step, None, :] - self._X._data[ind]
                    dists.append(xp.sqrt(xp.einsum("qkd,qkd->qk", diff, diff)))
                else:
                    dists.append(top.values._data)
                idxs.append(ind)
        dist, ind = xp.concatenate(dists), xp.concatenate(idxs)
        if return_distance:
            return like_input(dist, X), like_input(ind, X)
        return like_input(ind, X)

    def _votes(self, X):
        dist, ind = self.kneighbors(X)
        dist = dist._data if isinstance(dist, deepbox.Tensor) else dist
        ind = ind._data if isinstance(ind, deepbox.Tensor) else ind
        if self.weights == "uniform":
            w = xp.ones_like(dist)
        else:
            with xp.errstate(divide="ignore"):
                w = 1.0 / dist
            exact = xp.isinf(w)
            rows = exact.any(1)
            w[rows] = exact[rows]  # a query that coincides with training samples takes only their votes
        votes = xp.zeros((ind.shape[0], len(self.classes_)), w.dtype)
        xp.add.at(votes, (xp.arange(ind.shape[0])[:, None], self._codes[ind]), w)
        return votes

    def predict_proba(self, X):
        """Each class's share of the (weighted) votes: ``(n_samples, n_classes)`` in ``classes_`` order."""
        votes = self._votes(X)
        return like_input(votes / votes.sum(1, keepdims=True), X)

    def predict(self, X):
        """The class with the most (weighted) votes; ties go to the class that sorts first."""
        return like_input(self.classes_[self._votes(X).argmax(1)], X)
