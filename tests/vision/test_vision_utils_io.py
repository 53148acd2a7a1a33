"""deepbox.vision.utils and deepbox.vision.io against hand-computed grids and pixel values."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import deepbox
from deepbox.vision import io as vio
from deepbox.vision.utils import draw_bounding_boxes, draw_segmentation_masks, make_grid, save_image


def test_make_grid_layout_by_hand():
    # three 1x2x2 images with values 1, 2, 3; nrow=2, padding=1, pad_value=9 -> 3 channels, 2 rows
    x = deepbox.tensor(np.stack([np.full((1, 2, 2), v, np.float32) for v in (1, 2, 3)]))
    g = make_grid(x, nrow=2, padding=1, pad_value=9)._data
    row = [9, 1, 1, 9, 2, 2, 9]
    want = np.array([[9] * 7, row, row, [9] * 7, [9, 3, 3, 9, 9, 9, 9], [9, 3, 3, 9, 9, 9, 9], [9] * 7],
                    np.float32)
    assert g.shape == (3, 7, 7)
    for c in range(3):  # one channel is repeated into three
        np.testing.assert_array_equal(g[c], want)


def test_make_grid_defaults_lists_and_single_images():
    x = deepbox.rand(10, 3, 4, 5)
    g = make_grid(x)._data  # nrow=8, padding=2: 2 rows of 8 slots
    assert g.shape == (3, 2 * 6 + 2, 8 * 7 + 2)
    np.testing.assert_array_equal(g[:, 2:6, 2:7], x._data[0])
    np.testing.assert_array_equal(g[:, 8:12, 9:14], x._data[9])
    np.testing.assert_array_equal(g[:, 8:12, 16:21], 0)  # an empty slot stays at pad_value
    np.testing.assert_array_equal(make_grid([x[0], x[1]], nrow=1)._data, make_grid(x[:2], nrow=1)._data)
    one = make_grid(x[0])._data  # one image comes back as it is (no padding)
    np.testing.assert_array_equal(one, x._data[0])
    assert make_grid(deepbox.rand(4, 5))._data.shape == (3, 4, 5)


def test_make_grid_normalize_value_range_and_scale_each():
    a = deepbox.tensor(np.array([[[[0.0, 2.0]]], [[[4.0, 8.0]]]], np.float32))  # two 1x1x2 images
    g = make_grid(a, nrow=2, padding=0, normalize=True)._data[0]
    np.testing.assert_allclose(g, [[0, 0.25, 0.5, 1.0]])
    g = make_grid(a, nrow=2, padding=0, normalize=True, scale_each=True)._data[0]
    np.testing.assert_allclose(g, [[0, 1, 0, 1]])
    g = make_grid(a, nrow=2, padding=0, normalize=True, value_range=(1.0, 5.0))._data[0]
    np.testing.assert_allclose(g, [[0, 0.25, 0.75, 1.0]])  # clamped to the range first
    np.testing.assert_array_equal(a._data[1, 0, 0], [4, 8])  # the input is not changed
    with pytest.raises(TypeError, match="tuple"):
        make_grid(a, normalize=True, value_range=[0, 1])


def test_save_image_scales_rounds_and_clamps(tmp_path):
    x = deepbox.tensor(np.array([[[0.0, 0.5, 1.0, 1.7], [-0.2, 0.1, 0.999, 0.002]]], np.float32))[None]
    save_image(x, tmp_path / "x.png", padding=0)
    got = np.asarray(Image.open(tmp_path / "x.png"))
    # x * 255 + 0.5, clamped to [0, 255], truncated; one channel shown as RGB
    want = np.array([[0, 128, 255, 255], [0, 26, 255, 1]], np.uint8)
    assert got.shape == (2, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(got[:, :, c], want)
    save_image(deepbox.rand(5, 3, 4, 4), tmp_path / "grid.jpg", nrow=5)
    assert Image.open(tmp_path / "grid.jpg").size == (5 * 6 + 2, 6 + 2)


def test_draw_segmentation_masks_blends_by_hand():
    img = deepbox.tensor(np.full((3, 2, 2), 100, np.uint8))
    mask = deepbox.tensor(np.array([[True, False], [False, True]]))
    out = draw_segmentation_masks(img, mask, alpha=0.5, colors="red")._data
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, 0, 0], [177, 50, 50])  # 100*0.5 + (255, 0, 0)*0.5, truncated
    np.testing.assert_array_equal(out[:, 0, 1], [100, 100, 100])
    with pytest.raises(ValueError, match="same height and width"):
        draw_segmentation_masks(img, deepbox.zeros(3, 3, dtype=deepbox.bool))


def test_draw_bounding_boxes_outline_and_fill():
    img = deepbox.zeros(3, 10, 10, dtype=deepbox.uint8)
    out = draw_bounding_boxes(img, deepbox.tensor([[2, 2, 6, 7]]), colors=(0, 255, 0))._data
    assert out.shape == (3, 10, 10) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, 2, 2], [0, 255, 0])   # the outline
    np.testing.assert_array_equal(out[:, 7, 6], [0, 255, 0])
    np.testing.assert_array_equal(out[:, 4, 4], [0, 0, 0])     # the inside is untouched
    np.testing.assert_array_equal(out[:, 0, 0], [0, 0, 0])
    filled = draw_bounding_boxes(img, deepbox.tensor([[2, 2, 6, 7]]), colors=(0, 255, 0), fill=True)._data
    assert filled[1, 4, 4] == round(255 * 100 / 255)           # shaded at 100/255 opacity
    with pytest.raises(ValueError, match="xmin, ymin, xmax, ymax"):
        draw_bounding_boxes(img, deepbox.tensor([[5, 5, 1, 1]]))
    box = deepbox.tensor([[0, 0, 9, 9]])
    labelled = draw_bounding_boxes(img, box, labels=["cat"], colors="white")._data
    plain = draw_bounding_boxes(img, box, colors="white")._data
    assert (labelled[:, 2:8, 2:8] > plain[:, 2:8, 2:8]).any()  # the text is drawn inside the box


def test_read_write_png_and_jpeg_round_trip(tmp_path):
    rgb = deepbox.tensor(np.random.default_rng(0).integers(0, 256, (3, 5, 7), dtype=np.uint8))
    vio.write_png(rgb, str(tmp_path / "a.png"))
    back = vio.read_image(tmp_path / "a.png")
    assert back.dtype == deepbox.uint8 and tuple(back.shape) == (3, 5, 7)
    np.testing.assert_array_equal(back._data, rgb._data)
    gray = vio.read_image(tmp_path / "a.png", vio.ImageReadMode.GRAY)._data
    want = np.asarray(Image.open(tmp_path / "a.png").convert("L"))
    np.testing.assert_array_equal(gray[0], want)
    assert vio.read_image(tmp_path / "a.png", vio.ImageReadMode.RGB_ALPHA).shape == (4, 5, 7)
    data = vio.read_file(tmp_path / "a.png")
    np.testing.assert_array_equal(vio.decode_image(data)._data, rgb._data)
    flat = deepbox.tensor(np.full((3, 8, 8), 200, np.uint8))
    vio.write_jpeg(flat, tmp_path / "a.jpg", quality=95)
    j = vio.read_image(tmp_path / "a.jpg")._data
    assert j.shape == (3, 8, 8) and np.abs(j.astype(int) - 200).max() <= 2
    with pytest.raises(ValueError, match="uint8"):
        vio.write_png(deepbox.rand(3, 4, 4), tmp_path / "f.png")


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    a16 = np.array([[0, 257, 32896], [65535, 1000, 65280]], np.uint16)
    Image.fromarray(a16).save(tmp_path / "d.png")
    got = vio.read_image(tmp_path / "d.png")._data
    assert got.dtype == np.uint8 and got.shape == (1, 2, 3)
    np.testing.assert_array_equal(got[0], np.round(a16 / 257).astype(np.uint8))  # 0, 1, 128, 255, 4, 254
    rgb = vio.read_image(tmp_path / "d.png", vio.ImageReadMode.RGB)._data
    np.testing.assert_array_equal(rgb[2], got[0])


def test_read_modes_palette_and_gray_alpha(tmp_path):
    pal = Image.new("P", (3, 2))
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    pal.putpixel((1, 0), 1)
    pal.putpixel((2, 1), 2)
    pal.save(tmp_path / "p.png")
    rgb = vio.read_image(tmp_path / "p.png")._data          # a palette image comes back as RGB
    assert rgb.shape == (3, 2, 3)
    np.testing.assert_array_equal(rgb[:, 0, 1], [255, 0, 0])
    np.testing.assert_array_equal(rgb[:, 1, 2], [0, 255, 0])
    la = vio.read_image(tmp_path / "p.png", "GRAY_ALPHA")._data
    assert la.shape == (2, 2, 3) and (la[1] == 255).all()
    gray = deepbox.tensor(np.arange(12, dtype=np.uint8).reshape(1, 3, 4))
    vio.write_png(gray, tmp_path / "g.png", compression_level=9)
    np.testing.assert_array_equal(vio.read_image(tmp_path / "g.png")._data, gray._data)
    np.testing.assert_array_equal(vio.read_image(tmp_path / "g.png", vio.ImageReadMode.RGB)._data[1], gray._data[0])
    with pytest.raises(ValueError, match="mode"):
        vio.read_image(tmp_path / "g.png", "CMYK")
    with pytest.raises(RuntimeError, match="not a decodable image"):
        vio.decode_image(deepbox.tensor(np.frombuffer(b"not an image", np.uint8).copy()))
