"""Decoding images and masks: conversions, EXIF, palettes, colour maps and every bad input."""

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from deeplab_keras import data

pytestmark = pytest.mark.tf_free_host


def _save(tmp_path, name, array_or_image, **kwargs):
    path = os.path.join(str(tmp_path), name)
    image = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(
        np.asarray(array_or_image))
    image.save(path, **kwargs)
    return path


def _pixels(height=4, width=6, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_rgb_png_is_exact(tmp_path):
    pixels = _pixels()
    image = data.load_image(_save(tmp_path, "a.png", pixels))
    assert image.dtype == np.uint8 and image.shape == (4, 6, 3)
    np.testing.assert_array_equal(image, pixels)


def test_gray_rgba_palette_16bit_conversions(tmp_path):
    gray = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10
    np.testing.assert_array_equal(data.load_image(_save(tmp_path, "g.png", gray)),
                                  np.repeat(gray[..., None], 3, -1))
    rgba = np.concatenate([_pixels(), np.full((4, 6, 1), 7, np.uint8)], -1)
    np.testing.assert_array_equal(data.load_image(_save(tmp_path, "a.png", rgba)), rgba[..., :3])
    sixteen = (np.arange(24, dtype=np.uint16).reshape(4, 6) * 2700)
    image = data.load_image(_save(tmp_path, "s.png", sixteen))
    np.testing.assert_array_equal(image[..., 0], (sixteen >> 8).astype(np.uint8))
    assert (image[..., 0] == image[..., 2]).all()
    palette_image = Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8), mode="P")
    palette_image.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90] + [0] * 759)
    np.testing.assert_array_equal(data.load_image(_save(tmp_path, "p.png", palette_image)),
                                  [[[10, 20, 30], [40, 50, 60]], [[70, 80, 90], [40, 50, 60]]])
    la = Image.fromarray(np.stack([gray, np.zeros_like(gray)], -1), mode="LA")
    np.testing.assert_array_equal(data.load_image(_save(tmp_path, "la.png", la))[..., 1], gray)
    cmyk = Image.new("CMYK", (6, 4), (0, 0, 0, 0))
    np.testing.assert_array_equal(data.load_image(_save(tmp_path, "c.jpg", cmyk, quality=100)),
                                  np.full((4, 6, 3), 255, np.uint8))


def _raw_jpeg_pixels(path):
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


@pytest.mark.parametrize("orientation,rotate", [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(tmp_path, orientation, rotate):
    pixels = np.zeros((8, 16, 3), np.uint8)
    pixels[:, :8] = (255, 0, 0)  # left half red in the stored pixels
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(tmp_path, "e.jpg", pixels, exif=exif, quality=95)
    image = data.load_image(path)
    raw = _raw_jpeg_pixels(path)
    expected = np.rot90(raw, k=rotate)  # 6 = rotate 90 clockwise for display, 8 = 90 ccw
    assert image.shape == expected.shape
    np.testing.assert_array_equal(image, expected)
    if orientation == 6:
        assert image.shape == (16, 8, 3)
        assert image[0, 4, 0] > 200 and image[-1, 4, 0] < 60  # red went to the top


def test_exif_rotated_image_with_unrotated_mask_names_both(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    image_path = _save(tmp_path, "photo.jpg", _pixels(8, 16), exif=exif)
    mask_path = _save(tmp_path, "photo_mask.png", np.zeros((8, 16), np.uint8))
    layout = data.folder_layout(2)
    with pytest.raises(ValueError, match=r"photo\.jpg is 8x16.*photo_mask\.png is 16x8.*EXIF "
                                         r"orientation 6"):
        data.load_example(data.Example(image_path, mask_path), layout)
    rotated_mask = _save(tmp_path, "rotated_mask.png", np.zeros((16, 8), np.uint8))
    image, mask = data.load_example(data.Example(image_path, rotated_mask), layout)
    assert image.shape[:2] == mask.shape == (16, 8)


def test_size_mismatch_names_both_files(tmp_path):
    image_path = _save(tmp_path, "img.png", _pixels(4, 6))
    mask_path = _save(tmp_path, "msk.png", np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match=r"img\.png is 6x4 .*msk\.png is 5x4"):
        data.load_example(data.Example(image_path, mask_path), data.folder_layout(2))


def test_palette_mask_keeps_indices(tmp_path):
    indices = np.array([[0, 1, 2], [2, 255, 1]], np.uint8)
    mask = Image.fromarray(indices, mode="P")
    mask.putpalette([200, 10, 10, 10, 200, 10, 10, 10, 200] + [255] * 759)
    path = _save(tmp_path, "m.png", mask)
    np.testing.assert_array_equal(data.load_mask(path, data.folder_layout(3)), indices)


def test_rgb_colour_map(tmp_path):
    colour_map = {(0, 0, 0): 0, (255, 0, 0): 1, (0, 255, 0): 2, (255, 255, 255): 255}
    layout = data.folder_layout(3, colour_map=colour_map)
    np.testing.assert_array_equal(layout.palette, [[0, 0, 0], [255, 0, 0], [0, 255, 0]])
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 1] = (255, 0, 0)
    rgb[1, 2] = (0, 255, 0)
    rgb[1, 0] = (255, 255, 255)
    path = _save(tmp_path, "colour.png", rgb)
    np.testing.assert_array_equal(data.load_mask(path, layout), [[0, 1, 0], [255, 0, 2]])
    rgba = np.concatenate([rgb, np.full((2, 3, 1), 128, np.uint8)], -1)
    np.testing.assert_array_equal(data.load_mask(_save(tmp_path, "rgba.png", rgba), layout),
                                  [[0, 1, 0], [255, 0, 2]])
    rgb[0, 0] = (1, 2, 3)
    path = _save(tmp_path, "unknown_colour.png", rgb)
    with pytest.raises(ValueError, match=r"unknown_colour\.png.*\(1, 2, 3\): 1 px.*colour_map"):
        data.load_mask(path, layout)


def test_rgb_mask_without_colour_map(tmp_path):
    gray_as_rgb = np.repeat(np.array([[0, 1], [2, 255]], np.uint8)[..., None], 3, -1)
    path = _save(tmp_path, "grayrgb.png", gray_as_rgb)
    np.testing.assert_array_equal(data.load_mask(path, data.folder_layout(3)),
                                  [[0, 1], [2, 255]])
    path = _save(tmp_path, "colourful.png", _pixels(2, 2))
    with pytest.raises(ValueError, match=r"colourful\.png.*no colour_map"):
        data.load_mask(path, data.folder_layout(3))


def test_16bit_masks(tmp_path):
    layout = data.folder_layout(3)
    ok = _save(tmp_path, "ok16.png", np.array([[0, 1], [2, 255]], np.uint16))
    assert Image.open(ok).mode.startswith("I")
    np.testing.assert_array_equal(data.load_mask(ok, layout), [[0, 1], [2, 255]])
    big = _save(tmp_path, "big16.png", np.array([[0, 300], [300, 1]], np.uint16))
    with pytest.raises(ValueError, match=r"big16\.png.*\[300\].*2 pixels"):
        data.load_mask(big, layout)


def test_out_of_range_labels_name_file_value_and_count(tmp_path):
    path = _save(tmp_path, "bad_labels.png", np.array([[0, 5, 5], [254, 1, 5]], np.uint8))
    with pytest.raises(ValueError, match=r"bad_labels\.png: 4 pixels .*5: 3 px, 254: 1 px"):
        data.load_mask(path, data.folder_layout(3))


def test_empty_corrupt_truncated_and_missing_files(tmp_path):
    layout = data.folder_layout(3)
    empty = _save_bytes(tmp_path, "empty.png", b"")
    with pytest.raises(ValueError, match=r"empty\.png.*empty \(0 bytes\)"):
        data.load_image(empty)
    with pytest.raises(ValueError, match=r"empty\.png.*empty \(0 bytes\)"):
        data.load_mask(empty, layout)
    garbage = _save_bytes(tmp_path, "garbage.jpg", os.urandom(300))
    with pytest.raises(ValueError, match=r"garbage\.jpg.*Pillow cannot identify this image file"):
        data.load_image(garbage)
    text = _save_bytes(tmp_path, "text.png", b"hello, I am not a PNG")
    with pytest.raises(ValueError, match=r"text\.png"):
        data.load_mask(text, layout)
    for name, fmt in (("cut.png", "PNG"), ("cut.jpg", "JPEG")):
        buffer = io.BytesIO()
        Image.fromarray(_pixels(64, 64)).save(buffer, format=fmt)
        path = _save_bytes(tmp_path, name, buffer.getvalue()[:len(buffer.getvalue()) // 2])
        with pytest.raises(ValueError, match=name.replace(".", r"\.") + ".*corrupt or truncated"):
            data.load_image(path)
    with pytest.raises(FileNotFoundError, match=r"nothere\.png"):
        data.load_image(os.path.join(str(tmp_path), "nothere.png"))


def _save_bytes(tmp_path, name, payload):
    path = os.path.join(str(tmp_path), name)
    with open(path, "wb") as f:
        f.write(payload)
    return path


def _png_claiming(width, height):
    """A PNG whose header claims `width` x `height` pixels (with one tiny IDAT)."""
    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 8)) + chunk(b"IEND", b""))


def test_huge_header_and_animated_gif_are_refused(tmp_path):
    bomb = _save_bytes(tmp_path, "bomb.png", _png_claiming(40000, 40000))
    with pytest.raises(ValueError, match=r"bomb\.png.*(pixels|too many)"):
        data.load_image(bomb)
    frames = [Image.fromarray(_pixels(4, 4, seed=s)).convert("P") for s in range(2)]
    path = os.path.join(str(tmp_path), "anim.gif")
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.raises(ValueError, match=r"anim\.gif.*2 frames"):
        data.load_image(path)


def test_one_pixel_image_and_mask(tmp_path):
    image_path = _save(tmp_path, "one.png", _pixels(1, 1))
    mask_path = _save(tmp_path, "one_mask.png", np.array([[1]], np.uint8))
    image, mask = data.load_example(data.Example(image_path, mask_path), data.folder_layout(2))
    assert image.shape == (1, 1, 3) and mask.tolist() == [[1]]
