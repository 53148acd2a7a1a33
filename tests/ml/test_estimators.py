"""deepbox.ml estimators against scikit-learn on the same data."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn import datasets, linear_model, neighbors, preprocessing, svm
from sklearn import model_selection as skms

import deepbox
from deepbox import ml

rng = np.random.default_rng(0)


def regression_data(n=200, d=5, targets=None, seed=None):
    # seed: a data set of its own, whatever other tests drew from the shared generator before
    rng_ = rng if seed is None else np.random.default_rng(seed)
    X = rng_.standard_normal((n, d)) * np.array([1.0, 2.0, 0.5, 3.0, 1.5])[:d] + 4.0
    w = rng_.standard_normal((d,) if targets is None else (d, targets))
    y = X @ w + 1.5 + 0.3 * rng_.standard_normal(n if targets is None else (n, targets))
    return X, y


def scaled(name, n=None):
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    if n is not None:
        X, y = X[:n], y[:n]
    return preprocessing.StandardScaler().fit_transform(X), y


# ----------------------------------------------------------------------------- linear regression
@pytest.mark.parametrize("solver", ["lstsq", "normal"])
@pytest.mark.parametrize("alpha", [0.0, 2.5])
def test_linear_regression_closed_form_equals_sklearn(solver, alpha):
    X, y = regression_data()
    ours = ml.LinearRegression(alpha=alpha, solver=solver).fit(X, y)
    ref = (linear_model.Ridge(alpha=alpha) if alpha else linear_model.LinearRegression()).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-10)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-10)
    assert ours.score(X, y) == pytest.approx(ref.score(X, y), abs=1e-12)


def test_linear_regression_multi_target_and_no_intercept():
    X, Y = regression_data(targets=3)
    ours = ml.LinearRegression(alpha=1.0).fit(X, Y)
    ref = linear_model.Ridge(alpha=1.0).fit(X, Y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-10)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-10)
    assert ours.score(X, Y) == pytest.approx(ref.score(X, Y), abs=1e-12)
    ours = ml.LinearRegression(fit_intercept=False).fit(X, Y[:, 0])
    ref = linear_model.LinearRegression(fit_intercept=False).fit(X, Y[:, 0])
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-10)
    assert ours.intercept_ == 0.0


def test_linear_regression_rank_deficient_lstsq_is_min_norm():
    X, y = regression_data(n=30)
    X = np.hstack([X, X[:, :1] * 2.0])  # a collinear column: lstsq returns the minimum-norm solution
    ours = ml.LinearRegression().fit(X, y)
    ref = linear_model.LinearRegression().fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-8, atol=1e-10)
    with pytest.raises(deepbox.linalg.LinAlgError, match="singular"):
        ml.LinearRegression(solver="normal", fit_intercept=False).fit(np.zeros((4, 2)), np.ones(4))


@pytest.mark.parametrize("alpha", [0.0, 5.0])
def test_linear_regression_gradient_descent_converges_to_closed_form(alpha):
    X, y = regression_data()
    X = X - 4.0  # keep the Hessian's condition number moderate so 1500 epochs reach the optimum
    gd = ml.LinearRegression(alpha=alpha, solver="gd", epochs=1500).fit(X, y)
    ref = (linear_model.Ridge(alpha=alpha) if alpha else linear_model.LinearRegression()).fit(X, y)
    np.testing.assert_allclose(gd.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gd.intercept_, ref.intercept_, rtol=1e-6)
    assert np.all(np.diff(gd.loss_curve_) <= 1e-12), "full-batch GD with step 1/L never increases the objective"


def test_linear_regression_minibatch_sgd_gets_close():
    # its own data: with the shared generator the data set depended on test order, and 60 epochs reached
    # 0.05 of the closed form only for some of them (worst of 20 data sets: 0.45 after 60 epochs, 0.026 after 200)
    X, y = regression_data(seed=11)
    sgd = ml.LinearRegression(solver="gd", lr=0.01, epochs=200, batch_size=20, random_state=3).fit(X, y)
    ref = linear_model.LinearRegression().fit(X, y)
    np.testing.assert_allclose(sgd.coef_, ref.coef_, atol=0.05)
    assert sgd.score(X, y) > ref.score(X, y) - 1e-3
    again = ml.LinearRegression(solver="gd", lr=0.01, epochs=200, batch_size=20, random_state=3).fit(X, y)
    np.testing.assert_array_equal(sgd.coef_, again.coef_)


def test_linear_regression_tensors_in_tensors_out():
    X, y = regression_data()
    ours = ml.LinearRegression().fit(deepbox.tensor(X), deepbox.tensor(y))
    pred = ours.predict(deepbox.tensor(X))
    assert isinstance(pred, deepbox.Tensor) and pred.dtype == deepbox.float64
    np.testing.assert_allclose(pred.numpy(), linear_model.LinearRegression().fit(X, y).predict(X), rtol=1e-10)
    p32 = ml.LinearRegression().fit(X.astype(np.float32), y.astype(np.float32)).predict(X.astype(np.float32))
    assert p32.dtype == np.float32


def test_linear_regression_diverging_lr_is_reported():
    X, y = regression_data()
    with pytest.raises(FloatingPointError, match="diverged at epoch"), np.errstate(all="ignore"):
        ml.LinearRegression(solver="gd", lr=10.0, epochs=200).fit(X, y)


# ----------------------------------------------------------------------------- logistic regression
@pytest.mark.parametrize("name,n,C", [("breast_cancer", None, 1.0), ("iris", None, 0.5), ("digits", 600, 0.1)])
def test_logistic_regression_matches_sklearn(name, n, C):
    X, y = scaled(name, n)
    ours = ml.LogisticRegression(C=C, max_iter=500, tol=1e-7).fit(X, y)
    ref = linear_model.LogisticRegression(C=C, max_iter=5000, tol=1e-10).fit(X, y)
    assert ours.coef_.shape == ref.coef_.shape and ours.intercept_.shape == ref.intercept_.shape
    # the same strictly convex objective: both solvers reach the same optimum
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=2e-4 * np.abs(ref.coef_).max())
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=2e-4 * max(1, np.abs(ref.intercept_).max()))
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-4)
    assert (ours.predict(X) == ref.predict(X)).mean() >= 0.995
    assert ours.score(X, y) == pytest.approx(ref.score(X, y), abs=0.005)


def test_logistic_regression_gd_and_labels():
    X, y = scaled("breast_cancer")
    labels = np.array(["malignant", "benign"])[y]
    gd = ml.LogisticRegression(solver="gd", lr=1.0, max_iter=3000, tol=1e-6).fit(X, labels)
    ref = linear_model.LogisticRegression(max_iter=5000, tol=1e-10).fit(X, labels)
    assert list(gd.classes_) == list(ref.classes_)
    np.testing.assert_allclose(gd.coef_, ref.coef_, atol=2e-3)
    assert (gd.predict(X) == ref.predict(X)).mean() >= 0.995
    np.testing.assert_allclose(gd.decision_function(X), ref.decision_function(X), atol=2e-2)


def test_logistic_regression_generalises_on_digits():
    X, y = scaled("digits")
    Xtr, Xte, ytr, yte = skms.train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    ours = ml.LogisticRegression(C=0.1, max_iter=200).fit(Xtr, ytr)
    ref = linear_model.LogisticRegression(C=0.1, max_iter=2000).fit(Xtr, ytr)
    assert ours.score(Xte, yte) == pytest.approx(ref.score(Xte, yte), abs=0.01)
    assert ours.score(Xte, yte) > 0.94


# ----------------------------------------------------------------------------- k nearest neighbours
@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
def test_knn_predictions_identical_to_sklearn(weights, metric):
    X, y = datasets.load_digits(return_X_y=True)  # integer pixels: many exactly tied distances
    Xtr, ytr, Xte = X[:1000], y[:1000], X[1000:1400]
    ours = ml.KNeighborsClassifier(7, weights=weights, metric=metric, chunk_size=150).fit(Xtr, ytr)
    ref = neighbors.KNeighborsClassifier(7, weights=weights, metric=metric, algorithm="brute").fit(Xtr, ytr)
    np.testing.assert_array_equal(ours.predict(Xte), ref.predict(Xte))
    d, i = ours.kneighbors(Xte)
    rd, ri = ref.kneighbors(Xte)
    np.testing.assert_allclose(d, rd, rtol=1e-12, atol=1e-9)
    # where the k-th distance is not tied with the next, the neighbour sets are the same
    full = np.sort(((Xte[:, None] - Xtr[None]) ** 2).sum(-1) if metric == "euclidean"
                   else np.abs(Xte[:, None] - Xtr[None]).sum(-1), axis=1)
    clean = full[:, 6] < full[:, 7]
    assert clean.mean() > 0.5
    np.testing.assert_array_equal(np.sort(i[clean], 1), np.sort(ri[clean], 1))


def test_knn_probabilities_zero_distance_and_tensors():
    X, y = scaled("iris")
    ours = ml.KNeighborsClassifier(5, weights="distance").fit(deepbox.tensor(X), deepbox.tensor(y))
    ref = neighbors.KNeighborsClassifier(5, weights="distance").fit(X, y)
    # querying the training points themselves: each has distance 0 to itself and takes the whole vote
    proba = ours.predict_proba(deepbox.tensor(X))
    assert isinstance(proba, deepbox.Tensor)
    np.testing.assert_allclose(proba.numpy(), ref.predict_proba(X), atol=1e-12)
    Xq = X + 0.05 * rng.standard_normal(X.shape)
    np.testing.assert_allclose(ours.predict_proba(Xq).numpy() if isinstance(ours.predict_proba(Xq), deepbox.Tensor)
                               else ours.predict_proba(Xq), ref.predict_proba(Xq), rtol=1e-9)
    assert ours.score(Xq, y) == pytest.approx(ref.score(Xq, y))


# ----------------------------------------------------------------------------- linear SVM
def _svm_objective(W, b, X, y, C):
    T = np.where(y[:, None] == np.arange(W.shape[0]) + (1 if W.shape[0] == 1 else 0), 1.0, -1.0)
    return 0.5 * (W * W).sum() + C * np.maximum(0, 1 - T * (X @ W.T + b)).sum()


@pytest.mark.parametrize("name", ["breast_cancer", "digits"])
def test_linear_svc_close_to_sklearn(name):
    X, y = scaled(name)
    Xtr, Xte, ytr, yte = skms.train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    ours = ml.LinearSVC(C=1.0, epochs=40).fit(Xtr, ytr)
    ref = svm.LinearSVC(C=1.0, loss="hinge", max_iter=20000, intercept_scaling=10).fit(Xtr, ytr)
    assert ours.coef_.shape == ref.coef_.shape
    assert ours.score(Xte, yte) == pytest.approx(ref.score(Xte, yte), abs=0.02)
    assert (ours.predict(Xte) == ref.predict(Xte)).mean() >= 0.96
    # SGD on the nonsmooth hinge approaches the optimum slowly (O(1/(λT))): after 40 epochs the primal
    # objective is within 30 % of liblinear's optimum (measured: 7 % breast cancer, 24 % digits)
    assert _svm_objective(ours.coef_, ours.intercept_, Xtr, ytr, 1.0) <= \
        1.3 * _svm_objective(ref.coef_, ref.intercept_, Xtr, ytr, 1.0)
    assert ours.decision_function(Xte).shape == ref.decision_function(Xte).shape


def test_linear_svc_squared_hinge_and_determinism():
    X, y = scaled("breast_cancer")
    a = ml.LinearSVC(loss="squared_hinge", C=0.1, epochs=20, random_state=1).fit(X, y)
    b = ml.LinearSVC(loss="squared_hinge", C=0.1, epochs=20, random_state=1).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    ref = svm.LinearSVC(C=0.1, max_iter=20000).fit(X, y)
    assert a.score(X, y) == pytest.approx(ref.score(X, y), abs=0.02)


# ----------------------------------------------------------------------------- the estimator protocol
def test_params_clone_repr_and_errors():
    est = ml.LogisticRegression(C=0.3, max_iter=50)
    assert est.get_params()["C"] == 0.3 and set(est.get_params()) >= {"penalty", "solver", "tol"}
    assert est.set_params(C=2.0) is est and est.C == 2.0
    assert repr(est) == "LogisticRegression(C=2.0, max_iter=50)"
    c = ml.clone(est)
    assert c is not est and c.get_params() == est.get_params()
    with pytest.raises(ValueError, match="invalid parameter"):
        est.set_params(learning_rate=1)
    with pytest.raises(RuntimeError, match="not fitted"):
        ml.LinearSVC().predict(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="solver must be one of"):
        ml.LinearRegression(solver="magic").fit(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="different numbers of samples"):
        ml.LinearRegression().fit(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="fitted with 2"):
        ml.LinearRegression().fit(np.ones((3, 2)), np.arange(3.0)).predict(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="at least 2 classes"):
        ml.LogisticRegression().fit(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        ml.KNeighborsClassifier().fit(np.array([[np.nan, 1.0]]), np.array([0]))
    with pytest.raises(ValueError, match="n_neighbors"):
        ml.KNeighborsClassifier(0).fit(np.zeros((3, 2)), np.zeros(3))


def test_standard_scaler_matches_sklearn():
    X, _ = datasets.load_digits(return_X_y=True)
    ours, ref = ml.StandardScaler().fit(X), preprocessing.StandardScaler().fit(X)
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.inverse_transform(ours.transform(X)), X, atol=1e-12)
