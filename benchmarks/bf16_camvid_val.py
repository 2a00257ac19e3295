"""CamVid val mIoU and time of a bundled model in float32 and under `mixed_bfloat16`.

The bf16 path users take: `dk.load_model(name, dtype="mixed_bfloat16")` (the same weights,
bfloat16 arithmetic), scored by `deeplab_keras.evaluation.evaluate` on all 101 val frames.

Usage:
    python benchmarks/bf16_camvid_val.py --model deeplabv3plus_resnet50w40_camvid \\
        --data_dir ../shared/data/camvid
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="deeplabv3plus_resnet50w40_camvid")
    p.add_argument("--data_dir", default="../shared/data/camvid")
    args = p.parse_args()

    import deeplab_keras as dk
    from deeplab_keras import data
    from deeplab_keras import evaluation

    layout = data.get_layout("camvid")
    examples = data.list_examples(layout, args.data_dir, "val")
    for dtype in ("float32", "mixed_bfloat16"):
        model = dk.load_model(args.model, dtype=None if dtype == "float32" else dtype)
        start = time.perf_counter()
        result = evaluation.evaluate(model, data.iterate_eval(examples, layout),
                                     num_classes=layout.num_classes,
                                     ignore_label=layout.ignore_label,
                                     progress=False)
        seconds = (time.perf_counter() - start) / result["num_images"]
        print(f"{args.model} {dtype}: val mIoU {100 * result['miou']:.2f} on "
              f"{result['num_images']} images, {seconds:.2f} s/image")


if __name__ == "__main__":
    main()
