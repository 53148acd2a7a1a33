"""The steps of 'deepbox train' on their own: the augmentation recipe as transforms, the per-image dataset, and the
dispatcher that sub-command modules register with."""
from __future__ import annotations

import numpy as np

import deepbox
from deepbox.cli.data import TransformedImages
from deepbox.cli.train import augmentation


def _windows(img: np.ndarray, pad: float, flip: bool) -> list[np.ndarray]:
    """Every 4x4 window of the image padded by 2 with ``pad`` (and its mirror image): the recipe's possible outputs."""
    c, h, w = img.shape
    padded = np.full((c, h + 4, w + 4), pad, dtype=np.float32)
    padded[:, 2:2 + h, 2:2 + w] = img
    wins = [padded[:, i:i + h, j:j + w] for i in range(5) for j in range(5)]
    return wins + [x[..., ::-1] for x in wins] if flip else wins


def test_the_augmentation_recipe_shifts_by_up_to_two_pixels_with_the_pad_value():
    img = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    t = augmentation((4, 4), [-1.0, -2.0], flip=False)
    deepbox.manual_seed(0)
    seen = set()
    for _ in range(300):
        out = t(deepbox.from_numpy(img)).numpy()
        assert out.shape == (2, 4, 4)
        # each channel is padded with its own value (a black pixel after normalisation)
        hits = [k for k, wnd in enumerate(_windows(img[:1], -1.0, False)) if np.array_equal(out[:1], wnd)]
        assert hits and np.array_equal(out[1:], _windows(img[1:], -2.0, False)[hits[0]])
        seen.add(hits[0])
    assert len(seen) == 25  # all 5x5 offsets occur


def test_the_recipe_flips_only_when_asked():
    img = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    deepbox.manual_seed(1)
    flipped = 0
    t = augmentation((4, 4), [0.0], flip=True)
    wins = _windows(img, 0.0, True)
    for _ in range(300):
        out = t(deepbox.from_numpy(img)).numpy()
        k = next(k for k, wnd in enumerate(wins) if np.array_equal(out, wnd))
        flipped += k >= 25 and not any(np.array_equal(out, wnd) for wnd in wins[:25])
    assert 100 < flipped < 200  # about half


def test_transformed_images_batches_equal_their_samples():
    x = deepbox.from_numpy(np.random.default_rng(0).random((6, 1, 4, 4)).astype(np.float32))
    y = deepbox.from_numpy(np.arange(6))
    ds = TransformedImages(x, y, augmentation((4, 4), [0.0], flip=True))
    deepbox.manual_seed(3)
    batch = ds.__getitems__([4, 0, 5])
    deepbox.manual_seed(3)
    one_by_one = [ds[i] for i in (4, 0, 5)]
    for k in range(3):
        assert np.array_equal(batch[k][0], one_by_one[k][0].numpy())
        assert int(batch[k][1]) == int(one_by_one[k][1])
    loader = deepbox.utils.data.DataLoader(ds, batch_size=4)
    xb, yb = next(iter(loader))
    assert tuple(xb.shape) == (4, 1, 4, 4) and yb.tolist() == [0, 1, 2, 3]


def test_sub_commands_register_through_one_line(monkeypatch):
    import importlib
    import sys
    import types

    cli_main = importlib.import_module("deepbox.cli.main")  # the module (deepbox.cli.main is also the function)

    mod = types.ModuleType("deepbox_test_hello")

    def add_parsers(sub, common):
        p = sub.add_parser("hello", parents=[common])
        p.set_defaults(func=lambda args: 7)

    mod.add_parsers = add_parsers
    monkeypatch.setitem(sys.modules, "deepbox_test_hello", mod)
    monkeypatch.setattr(cli_main, "COMMANDS", (*cli_main.COMMANDS, "deepbox_test_hello"))
    assert cli_main.main(["hello"]) == 7
