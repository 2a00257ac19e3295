"""Dataset layouts: finding pairs on disk and mapping raw mask values, on tiny files."""

import os
import pickle

import numpy as np
import pytest
from PIL import Image

from deeplab_keras import data
from deeplab_keras.data import layouts

pytestmark = pytest.mark.tf_free_host


def _image(path, height=4, width=6, seed=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    # PNG keeps pixels exact; the .jpg name is only a name here (Pillow reads by content).
    Image.fromarray(pixels).save(path, format="PNG")
    return pixels


def _mask(path, values):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(values, np.uint8)).save(path)


def _mask_grid(height=4, width=6, values=(0,)):
    grid = np.resize(np.asarray(values, np.uint8), height * width).reshape(height, width)
    return grid


def test_list_layouts_and_get_layout():
    names = data.list_layouts()
    for name in ("folder", "voc_aug", "cityscapes", "pascal_context", "person_part", "ade20k",
                 "camvid"):
        assert name in names
    expected = {"voc_aug": 21, "cityscapes": 19, "pascal_context": 59, "person_part": 7,
                "ade20k": 150, "camvid": 11}
    for name, num_classes in expected.items():
        layout = data.get_layout(name)
        assert layout.num_classes == num_classes
        assert layout.ignore_label == 255
        assert len(layout.class_names) == num_classes
        assert layout.palette.shape == (num_classes, 3) and layout.palette.dtype == np.uint8
        assert layout.label_table.shape == (256,)
    layout = data.get_layout("camvid")
    assert data.get_layout(layout) is layout
    assert layout.class_names[0] == "Sky" and layout.class_names[10] == "Bicyclist"
    with pytest.raises(ValueError, match="Unknown layout 'nope'.*camvid"):
        data.get_layout("nope")
    with pytest.raises(ValueError, match="num_classes"):
        data.get_layout("folder")
    assert data.get_layout("folder", num_classes=4).num_classes == 4


def test_layout_validation():
    with pytest.raises(ValueError, match="ignore_label"):
        data.folder_layout(num_classes=5, ignore_label=3)
    with pytest.raises(ValueError, match="class_names"):
        data.folder_layout(num_classes=3, class_names=("a", "b"))
    table = np.full(256, -1)
    table[0] = 7
    with pytest.raises(ValueError, match="label_table maps to \\[7\\]"):
        data.folder_layout(num_classes=3, label_table=table)
    with pytest.raises(ValueError, match="colour_map maps"):
        data.folder_layout(num_classes=2, colour_map={(1, 2, 3): 9})
    layout = data.folder_layout(num_classes=3)
    assert layout.label_table[2] == 2 and layout.label_table[3] == -1
    assert layout.label_table[255] == 255


def test_cityscapes_label_ids_to_train_ids(tmp_path):
    root = str(tmp_path)
    image = os.path.join(root, "leftImg8bit", "train", "aachen",
                         "aachen_000000_000019_leftImg8bit.png")
    mask = os.path.join(root, "gtFine", "train", "aachen",
                        "aachen_000000_000019_gtFine_labelIds.png")
    _image(image, 2, 4)
    _mask(mask, [[7, 26, 0, 33], [8, 1, 255, 24]])
    # gtFine also holds *_color.png / *_instanceIds.png, which must be ignored.
    _mask(mask.replace("labelIds", "instanceIds"), [[0, 0, 0, 0], [0, 0, 0, 0]])
    examples = data.list_examples("cityscapes", root, "train")
    assert examples == [data.Example(image, mask)]
    assert examples[0].name == "aachen_000000_000019_leftImg8bit"
    _, loaded = data.load_example(examples[0], "cityscapes")
    np.testing.assert_array_equal(loaded, [[0, 13, 255, 18], [1, 255, 255, 11]])


def test_cityscapes_missing_mask_names_the_image(tmp_path):
    root = str(tmp_path)
    image = os.path.join(root, "leftImg8bit", "val", "bonn", "bonn_000000_000001_leftImg8bit.png")
    _image(image)
    with pytest.raises(ValueError, match="bonn_000000_000001_leftImg8bit.png"):
        data.list_examples("cityscapes", root, "val")
    examples = data.list_examples("cityscapes", root, "val", require_masks=False)
    assert examples[0].mask_path is None
    image_array, mask = data.load_example(examples[0], "cityscapes")
    assert mask is None and image_array.shape == (4, 6, 3)


def test_ade20k_shift_and_ignore(tmp_path):
    root = os.path.join(str(tmp_path), "ADEChallengeData2016")
    image = os.path.join(root, "images", "training", "ADE_train_00000001.jpg")
    mask = os.path.join(root, "annotations", "training", "ADE_train_00000001.png")
    _image(image, 1, 4)
    _mask(mask, [[0, 1, 150, 2]])
    # The parent folder and the "train" alias both work.
    examples = data.list_examples("ade20k", str(tmp_path), "train")
    assert examples == [data.Example(image, mask)]
    _, loaded = data.load_example(examples[0], "ade20k")
    np.testing.assert_array_equal(loaded, [[255, 0, 149, 1]])
    _mask(mask, [[0, 151, 151, 2]])
    with pytest.raises(ValueError, match=r"ADE_train_00000001\.png.*151: 2 px"):
        data.load_example(examples[0], "ade20k")


def test_camvid_void_is_ignored_and_palette_file(tmp_path):
    root = str(tmp_path)
    image = os.path.join(root, "train", "0001TP_006690.png")
    mask = os.path.join(root, "trainannot", "0001TP_006690.png")
    _image(image, 2, 6)
    _mask(mask, [[0, 1, 2, 3, 10, 11], [11, 11, 5, 6, 7, 8]])
    examples = data.list_examples("camvid", root, "train")
    _, loaded = data.load_example(examples[0], "camvid")
    np.testing.assert_array_equal(loaded, [[0, 1, 2, 3, 10, 255], [255, 255, 5, 6, 7, 8]])
    _mask(mask, [[0, 1, 2, 3, 12, 11], [11, 11, 5, 6, 7, 8]])
    with pytest.raises(ValueError, match=r"0001TP_006690\.png.*12: 1 px"):
        data.load_example(examples[0], "camvid")
    # palette11.png in data_dir wins over the built-in table (pixel i = colour of label i).
    np.testing.assert_array_equal(data.get_layout("camvid").palette[4], [60, 40, 222])
    colours = np.zeros((1, 256, 3), np.uint8)
    colours[0, :12] = np.arange(12)[:, None] * 10
    Image.fromarray(colours).save(os.path.join(root, "palette11.png"))
    palette = data.get_layout("camvid", data_dir=root).palette
    np.testing.assert_array_equal(palette[:, 0], np.arange(11) * 10)


def test_voc_aug_lists_palette_masks_and_bad_values(tmp_path):
    root = str(tmp_path)
    for id_ in ("2007_000032", "2007_000039"):
        _image(os.path.join(root, "JPEGImages", id_ + ".jpg"), 2, 3)
        mask = Image.fromarray(np.array([[0, 15, 255], [1, 20, 0]], np.uint8), mode="P")
        mask.putpalette(data.get_layout("voc_aug").palette.ravel().tolist())
        os.makedirs(os.path.join(root, "SegmentationClassAug"), exist_ok=True)
        mask.save(os.path.join(root, "SegmentationClassAug", id_ + ".png"))
    lists = os.path.join(root, "ImageSets", "Segmentation")
    os.makedirs(lists)
    with open(os.path.join(lists, "train_aug.txt"), "w") as f:
        # DeepLab's list format ("image mask") and the plain id format both work.
        f.write("/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png\n"
                "2007_000039\n\n")
    examples = data.list_examples("voc_aug", root, "train_aug")
    assert [e.name for e in examples] == ["2007_000032", "2007_000039"]
    _, loaded = data.load_example(examples[0], "voc_aug")
    np.testing.assert_array_equal(loaded, [[0, 15, 255], [1, 20, 0]])
    with open(os.path.join(lists, "val.txt"), "w") as f:
        f.write("2007_999999\n")
    with pytest.raises(FileNotFoundError, match="2007_999999"):
        data.list_examples("voc_aug", root, "val")
    with pytest.raises(FileNotFoundError, match="test.txt"):
        data.list_examples("voc_aug", root, "test")
    Image.fromarray(np.array([[0, 21, 21], [1, 2, 0]], np.uint8)).save(examples[1].mask_path)
    with pytest.raises(ValueError, match=r"2007_000039\.png.*21: 2 px"):
        data.load_example(examples[1], "voc_aug")


def test_pascal_context_shift(tmp_path):
    root = str(tmp_path)
    _image(os.path.join(root, "JPEGImages", "2008_000002.jpg"), 1, 4)
    _mask(os.path.join(root, "SegmentationClassContext", "2008_000002.png"), [[0, 1, 59, 255]])
    os.makedirs(os.path.join(root, "ImageSets", "SegmentationContext"))
    with open(os.path.join(root, "ImageSets", "SegmentationContext", "val.txt"), "w") as f:
        f.write("2008_000002\n")
    examples = data.list_examples("pascal_context", root, "val")
    _, loaded = data.load_example(examples[0], "pascal_context")
    np.testing.assert_array_equal(loaded, [[255, 0, 58, 255]])
    assert data.get_layout("pascal_context").class_names[58] == "wood"
    _mask(examples[0].mask_path, [[0, 60, 59, 255]])
    with pytest.raises(ValueError, match=r"2008_000002\.png.*60: 1 px"):
        data.load_example(examples[0], "pascal_context")


def test_person_part(tmp_path):
    root = str(tmp_path)
    _image(os.path.join(root, "JPEGImages", "2008_000003.jpg"), 1, 4)
    _mask(os.path.join(root, "SegmentationPart", "2008_000003.png"), [[0, 6, 255, 3]])
    os.makedirs(os.path.join(root, "list"))
    with open(os.path.join(root, "list", "train_id.txt"), "w") as f:
        f.write("2008_000003\n")
    examples = data.list_examples("person_part", root, "train")
    _, loaded = data.load_example(examples[0], "person_part")
    np.testing.assert_array_equal(loaded, [[0, 6, 255, 3]])
    _mask(examples[0].mask_path, [[0, 7, 255, 3]])
    with pytest.raises(ValueError, match=r"2008_000003\.png.*7: 1 px"):
        data.load_example(examples[0], "person_part")


def test_folder_layout_pairs_by_stem(tmp_path):
    root = str(tmp_path)
    _image(os.path.join(root, "images", "train", "b.jpg"))
    _image(os.path.join(root, "images", "train", "sub", "a.png"))
    _mask(os.path.join(root, "masks", "train", "b_mask.png"), _mask_grid(values=(0, 1)))
    _mask(os.path.join(root, "masks", "train", "sub", "a_mask.png"), _mask_grid(values=(2,)))
    layout = data.folder_layout(3, class_names=("bg", "cat", "dog"), mask_suffix="_mask")
    examples = data.list_examples(layout, root, "train")
    assert [e.name for e in examples] == ["b", "a"]  # sorted by path: b.jpg < sub/a.png
    assert examples[1].mask_path.endswith(os.path.join("sub", "a_mask.png"))
    _, mask = data.load_example(examples[1], layout)
    assert (mask == 2).all()
    # {split}/images + {split}/masks also works, and no split means images/ + masks/.
    _image(os.path.join(root, "val", "images", "c.jpg"))
    _mask(os.path.join(root, "val", "masks", "c.png"), _mask_grid())
    assert [e.name for e in data.list_examples(data.folder_layout(3), root, "val")] == ["c"]
    flat = os.path.join(root, "flat")
    _image(os.path.join(flat, "images", "d.jpg"))
    _mask(os.path.join(flat, "masks", "d.png"), _mask_grid())
    assert [e.name for e in data.list_examples(data.folder_layout(3), flat)] == ["d"]


def test_folder_layout_errors(tmp_path):
    root = str(tmp_path)
    layout = data.folder_layout(3)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.list_examples(layout, os.path.join(root, "missing"), "train")
    with pytest.raises(FileNotFoundError, match=r"images.train.*expects"):
        data.list_examples(layout, root, "train")
    os.makedirs(os.path.join(root, "images", "train"))
    with open(os.path.join(root, "images", "train", "notes.txt"), "w") as f:
        f.write("not an image")
    with pytest.raises(ValueError, match=r"No images found in .*images.train.*expects"):
        data.list_examples(layout, root, "train")
    _image(os.path.join(root, "images", "train", "lonely.jpg"))
    os.makedirs(os.path.join(root, "masks", "train"))
    with pytest.raises(ValueError, match=r"No mask for image .*lonely\.jpg"):
        data.list_examples(layout, root, "train")
    assert data.list_examples(layout, root, "train", require_masks=False)[0].mask_path is None
    _mask(os.path.join(root, "masks", "train", "lonely.png"), _mask_grid())
    _mask(os.path.join(root, "masks", "train", "lonely.bmp"), _mask_grid())
    with pytest.raises(ValueError, match="Two masks share the stem 'lonely'"):
        data.list_examples(layout, root, "train")
    with pytest.raises(ValueError, match="needs a split"):
        data.list_examples("camvid", root)


def test_layouts_pickle():
    for layout in (data.folder_layout(4, mask_suffix="_m"), data.get_layout("cityscapes"),
                   data.get_layout("voc_aug")):
        clone = pickle.loads(pickle.dumps(layout))
        assert clone.name == layout.name and clone.num_classes == layout.num_classes
        np.testing.assert_array_equal(clone.label_table, layout.label_table)


def test_cityscapes_table_matches_official_train_ids():
    table = layouts._cityscapes_table()
    kept = {int(i): int(table[i]) for i in range(256) if table[i] != 255}
    assert kept == {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
                    24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


@pytest.mark.real_data
def test_camvid_real_data():
    root = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "camvid")
    if not os.path.isdir(root):
        pytest.skip(f"CamVid not found at {root}")
    layout = data.get_layout("camvid", data_dir=root)
    train = data.list_examples(layout, root, "train")
    val = data.list_examples(layout, root, "val")
    assert (len(train), len(val)) == (367, 101)
    for example in train[:5] + val[:5]:
        image, mask = data.load_example(example, layout)
        assert image.shape == (360, 480, 3) and mask.shape == (360, 480)
        assert set(np.unique(mask).tolist()) <= set(range(11)) | {255}
