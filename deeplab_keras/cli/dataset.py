"""The dataset a command reads, from the flags: its layout (your own folder, or a built-in one)
with its class count, names, ignore label and colours; and the examples of a split."""

import os

from absl import app

from deeplab_keras.cli import flags as cli_flags


def require_data_dir():
    data_dir = cli_flags.DATA_DIR.value
    if not data_dir:
        raise app.UsageError("--data_dir is required (the dataset's root folder).")
    if not os.path.isdir(data_dir):
        raise app.UsageError(f"--data_dir {data_dir!r} is not a folder.")
    return data_dir


def layout():
    """The `Layout` the flags describe; UsageError for contradictions (before any work)."""
    from deeplab_keras.data import layouts

    name = cli_flags.DATASET.value
    if name not in layouts.list_layouts():
        raise app.UsageError(f"--dataset {name!r} is not a layout; choose one of "
                             f"{layouts.list_layouts()} ('folder' for your own data).")
    names = cli_flags.class_names()
    num_classes = cli_flags.NUM_CLASSES.value
    if name == "folder":
        if num_classes is None and names is None:
            raise app.UsageError("--dataset folder needs --num_classes N (or --class_names).")
        num_classes = num_classes or len(names)
        if names is not None and len(names) != num_classes:
            raise app.UsageError(f"--class_names gives {len(names)} names for --num_classes "
                                 f"{num_classes}.")
        options = dict(num_classes=num_classes, class_names=names,
                       images_dir=cli_flags.IMAGES_DIR.value, masks_dir=cli_flags.MASKS_DIR.value,
                       mask_suffix=cli_flags.MASK_SUFFIX.value)
        if cli_flags.IGNORE_LABEL.value is not None:
            options["ignore_label"] = cli_flags.IGNORE_LABEL.value
        try:
            return layouts.get_layout("folder", **options)
        except ValueError as error:
            raise app.UsageError(str(error)) from None
    builtin = layouts.get_layout(name, **({"data_dir": cli_flags.DATA_DIR.value}
                                          if name == "camvid" else {}))
    if num_classes is not None and num_classes != builtin.num_classes:
        raise app.UsageError(f"--dataset {name} has {builtin.num_classes} classes; "
                             f"--num_classes {num_classes} does not fit its masks. For your own "
                             "classes use --dataset folder.")
    if names is not None and len(names) != builtin.num_classes:
        raise app.UsageError(f"--class_names gives {len(names)} names; --dataset {name} has "
                             f"{builtin.num_classes} classes.")
    if cli_flags.IGNORE_LABEL.value not in (None, builtin.ignore_label):
        raise app.UsageError(f"--dataset {name} maps void to {builtin.ignore_label}; "
                             "--ignore_label only applies to --dataset folder.")
    if names is not None:
        import dataclasses

        builtin = dataclasses.replace(builtin, class_names=tuple(names))
    return builtin


def has_split(layout_, split):
    """Whether the data has folders for `split` (always true for built-in layouts)."""
    if layout_.name != "folder":
        return True
    data_dir, images = require_data_dir(), cli_flags.IMAGES_DIR.value
    return any(os.path.isdir(os.path.join(data_dir, *parts))
               for parts in ((images, split), (split, images)))


def examples(layout_, split, explicit):
    """The split's examples. 'folder' data without split folders: every image, when the split
    was not asked for explicitly."""
    from deeplab_keras import data

    data_dir = require_data_dir()
    if not explicit and not has_split(layout_, split):
        print(f"NOTE: {data_dir} has no '{split}' split folder; using every image under "
              f"{cli_flags.IMAGES_DIR.value}/.")
        split = None
    return data.list_examples(layout_, data_dir, split)


__all__ = ["examples", "has_split", "layout", "require_data_dir"]
