"""Every lecture walk-through in ``examples/`` runs end to end in ``--quick`` mode and its key claim holds.

Each example's ``main(argv)`` returns the numbers it printed (also in ``results.json``); the
claims checked here are the ones the lecture makes, at the scale of a smoke test.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.examples.runner import run


def pngs(out: Path) -> set[str]:
    return {p.name for p in out.glob("*.png") if p.stat().st_size > 1000}


def test_l02_closed_form_equals_gd_and_mle(tmp_path):
    r, out = run("l02_ml_basics", tmp_path)
    assert r["max_abs_diff_gd_vs_closed_form"] < 1e-5
    assert r["max_abs_diff_mle_vs_closed_form"] < 1e-3
    assert r["sigma2_mle"] == pytest.approx(r["mean_squared_residual"], rel=1e-3)
    assert r["logreg_acc"] > 0.9 and r["knn_acc"] > 0.9
    if "sklearn_logreg_acc" in r:
        assert abs(r["logreg_acc"] - r["sklearn_logreg_acc"]) <= 0.02
        assert abs(r["knn_acc"] - r["sklearn_knn_acc"]) <= 0.02
    assert "linear_regression.png" in pngs(out)


def test_l03_backprop_by_hand_equals_deepbox_and_gradcheck(tmp_path):
    r, out = run("l03_computational_graph", tmp_path)
    assert r["neuron_f"] == pytest.approx(0.7310585786, abs=1e-9)
    assert r["neuron_max_grad_diff"] < 1e-12
    assert r["mlp_loss_diff"] < 1e-12 and r["mlp_max_grad_diff"] < 1e-12
    assert r["gradcheck_neuron"] and r["gradcheck_mlp"]
    dot = (out / "neuron_graph.dot").read_text()
    assert dot.startswith("digraph") and dot.count("->") >= 10
    assert "neuron_graph.png" in pngs(out)


def test_l05_every_optimiser_descends_and_lbfgs_beats_gd(tmp_path):
    r, out = run("l05_optimizers", tmp_path)
    assert set(r["last_epoch_loss"]) == {"SGD", "momentum", "Nesterov", "RMSprop", "Adam"}
    for name, last in r["last_epoch_loss"].items():
        assert last < r["first_epoch_loss"][name], name
    assert r["last_epoch_loss"]["momentum"] < r["last_epoch_loss"]["SGD"]
    assert r["lbfgs_loss"] < 0.5 * r["gd_loss"]
    assert {"optimizers.png", "lbfgs.png"} <= pngs(out)


def test_l06_small_set_overfits_and_early_stopping_keeps_the_best(tmp_path):
    r, out = run("l06_overfitting_and_regularisation", tmp_path)
    base = r["none"]
    assert base["train_acc"] - base["test_acc"] > 0.08  # memorised, not generalised
    es = r["early stopping"]
    assert min(es["val_loss_curve"]) <= min(base["val_loss_curve"]) + 1e-6
    assert es["test_loss"] <= base["test_loss"] + 0.02
    for cfg in ("weight decay", "dropout", "augmentation"):
        assert 0.5 < r[cfg]["test_acc"] <= 1.0, cfg
    assert "validation_loss.png" in pngs(out)


def test_l07_batchnorm_trains_faster(tmp_path):
    r, out = run("l07_batchnorm", tmp_path)
    assert r["batch norm"]["final_train_loss"] < 0.7 * r["plain"]["final_train_loss"]
    assert r["batch norm"]["test_acc"] > r["plain"]["test_acc"]
    assert "batchnorm.png" in pngs(out)


def test_l08_schedules_shape_the_rate_and_search_ranks_trials(tmp_path):
    r, out = run("l08_lr_schedules_and_search", tmp_path)
    lr = 0.1
    first, lo, hi, last = r["lr_curves"]["constant"]
    assert first == lo == hi == last == pytest.approx(lr)
    assert r["lr_curves"]["step"][-1] <= lr * 0.01 * (1 + 1e-9)  # decays by 10 every third of the run
    assert r["lr_curves"]["cosine"][-1] < 0.05 * lr
    assert r["lr_curves"]["one-cycle"][0] == pytest.approx(lr / 25)  # OneCycleLR's div_factor
    assert r["lr_curves"]["one-cycle"][2] == pytest.approx(lr, rel=1e-3)
    assert r["lr_curves"]["warm-up + cosine"][0] == pytest.approx(lr * 0.01)
    for s in r["schedules"].values():
        assert s["test_acc"] > 0.5
    scores = [t["val_acc"] for t in r["search"]]
    assert scores == sorted(scores, reverse=True) and r["best_val_acc"] == scores[0] > 0.2
    assert "schedules_and_search.png" in pngs(out)


def test_l09_lenet_learns_digits(tmp_path):
    r, out = run("l09_lenet_mnist", tmp_path)
    assert r["parameters"] == 61706
    assert r["test_acc"] > 0.35  # 2 quick epochs on 512 digits; the full run is near 98-99 %
    assert r["history"]["loss"][-1] < r["history"]["loss"][0]
    assert {"learning_curves.png", "conv1_filters.png", "confusion_matrix.png"} <= pngs(out)


def test_l10_resnet_trains_below_plain_net_of_same_depth(tmp_path):
    r, out = run("l10_resnet_vs_plain", tmp_path)
    assert r["plain"]["parameters"] == r["resnet"]["parameters"]  # option-A shortcuts add none
    assert r["resnet"]["final_train_loss"] < r["plain"]["final_train_loss"] - 0.1
    assert "resnet_vs_plain.png" in pngs(out)


def test_l10_unet_segments_shapes(tmp_path):
    r, out = run("l10_unet_shapes", tmp_path)
    assert r["final_loss"] < 0.75 * r["first_loss"]
    assert r["pixel_acc"] > 0.8
    assert "segmentations.png" in pngs(out)


def test_l11_gradients_vanish_explode_and_clipping_bounds_the_norm(tmp_path):
    r, out = run("l11_bptt_gradients", tmp_path)
    ratio = r["first_over_last_grad_ratio"]
    assert ratio["tanh RNN, radius 0.5"] < 1e-4
    assert ratio["linear RNN, radius 1.5"] > 1e3
    assert ratio["LSTM, forget bias 3"] > 100 * ratio["LSTM, forget bias 0"]
    assert r["max_norm_before_clip_clipped"] > r["clip"]
    assert r["max_applied_norm_clipped"] <= r["clip"] * (1 + 1e-5)
    assert "bptt_gradients.png" in pngs(out)


def test_l12_generative_models_train_and_save_samples(tmp_path):
    r, out = run("l12_generative", tmp_path)
    assert r["autoencoder"]["final_bce"] < r["autoencoder"]["first_bce"]
    assert r["vae"]["final_loss"] < r["vae"]["first_loss"]
    assert 0.0 <= r["gan"]["sample_min"] and r["gan"]["sample_max"] <= 1.0
    assert r["gan"]["sample_std_over_batch"] > 1e-4  # the samples depend on the noise
    assert r["transfer"]["labels"] == 100
    assert 0.0 <= r["transfer"]["scratch_acc"] <= 1.0 and 0.0 <= r["transfer"]["pretrained_acc"] <= 1.0
    assert {"autoencoder.png", "vae_samples.png", "vae_reconstructions.png", "gan_samples.png"} <= pngs(out)
