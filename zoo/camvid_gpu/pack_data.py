"""Packs CamVid train + val for a lent GPU machine, and fetches the wheels it lacks (issue 18).

The device machine has JAX but no Keras and no CamVid: what a run needs must travel in the
working tree (64 MiB in all, the tracked files included). This script writes

* `.camvid_pack/` (git-ignored): `{train,val}/*.jpg` (the RGB frames as JPEG, quality 95),
  `{train,val}annot/*.png` (the label PNGs, copied byte for byte: labels stay lossless),
  `palette11.png` and `manifest.json` (counts, bytes, JPEG quality and its measured error).
  It keeps the SegNet CamVid layout, so `deeplab_keras.data.list_examples("camvid", pack,
  "train")` reads it like the original;
* `.whl/` (git-ignored): the keras, namex and optree wheels for the device's Python 3.12 on
  x86-64 (`pip download --no-deps`), the same versions as installed here unless given; older
  wheels of those three packages in `.whl/` are removed (two versions stop the install).

It prints the JPEG error against the original PNG frames (mean absolute difference in 0..255
levels, and PSNR) and the size of everything that would travel to the device.

Usage (from the repository root):
    python3 zoo/camvid_gpu/pack_data.py                      # ../shared/data/camvid -> .camvid_pack
    python3 zoo/camvid_gpu/pack_data.py --max_train 4 --max_val 2 --output /tmp/pack --no_wheels
"""

import argparse
import glob
import importlib.metadata
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

from deeplab_keras.files import disk_size

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPLITS = ("train", "val")
WHEELS = ("keras", "namex", "optree")
DEVICE_PYTHON = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")
MIB = 1024 * 1024
TRAVEL_LIMIT = 64 * MIB


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", default=os.path.join(ROOT, "..", "shared", "data", "camvid"),
                        help="CamVid root (SegNet layout: train/, trainannot/, val/, valannot/).")
    parser.add_argument("--output", default=os.path.join(ROOT, ".camvid_pack"),
                        help="Pack folder (replaced).")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality.")
    parser.add_argument("--subsampling", type=int, default=2, choices=(0, 1, 2),
                        help="JPEG chroma subsampling (Pillow: 0 = 4:4:4, 2 = 4:2:0, Pillow's "
                             "default at quality 95; 4:4:4 makes the pack ~20%% larger).")
    parser.add_argument("--max_train", type=int, default=0, help="Only the first N train frames "
                        "(trial runs; 0 = all).")
    parser.add_argument("--max_val", type=int, default=0, help="Only the first N val frames.")
    parser.add_argument("--wheels_dir", default=os.path.join(ROOT, ".whl"))
    parser.add_argument("--no_wheels", action="store_true", help="Do not fetch the wheels.")
    for name in WHEELS:
        parser.add_argument(f"--{name}_version", default=None,
                            help=f"{name} version (default: the one installed here).")
    return parser.parse_args(argv)


def pack_split(data_dir, output, split, limit, quality, subsampling):
    """Writes one split; returns `(count, image bytes, label bytes, per-image mean |diff|s,
    squared-error sum, pixel count)`."""
    sources = sorted(glob.glob(os.path.join(data_dir, split, "*.png")))
    if not sources:
        raise SystemExit(f"No {split}/*.png under {data_dir}: is it the SegNet CamVid layout?")
    if limit:
        sources = sources[:limit]
    os.makedirs(os.path.join(output, split))
    os.makedirs(os.path.join(output, split + "annot"))
    image_bytes = label_bytes = 0
    diffs, squared, pixels = [], 0.0, 0
    for source in sources:
        stem = os.path.splitext(os.path.basename(source))[0]
        label = os.path.join(data_dir, split + "annot", stem + ".png")
        if not os.path.isfile(label):
            raise SystemExit(f"{source} has no label {label}.")
        with Image.open(source) as img:
            original = np.asarray(img.convert("RGB"))
        buffer = io.BytesIO()
        Image.fromarray(original).save(buffer, "JPEG", quality=quality, subsampling=subsampling)
        target = os.path.join(output, split, stem + ".jpg")
        with open(target, "wb") as f:
            f.write(buffer.getvalue())
        with Image.open(target) as img:
            decoded = np.asarray(img.convert("RGB"))
        error = decoded.astype(np.int32) - original.astype(np.int32)
        diffs.append(float(np.abs(error).mean()))
        squared += float(np.square(error, dtype=np.float64).sum())
        pixels += error.size
        shutil.copyfile(label, os.path.join(output, split + "annot", stem + ".png"))
        image_bytes += os.path.getsize(target)
        label_bytes += os.path.getsize(label)
    return len(sources), image_bytes, label_bytes, diffs, squared, pixels


def tree_bytes():
    """Bytes of the tracked and untracked-not-ignored files (what travels besides `carry`)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], cwd=ROOT, check=True,
                                capture_output=True).stdout.split(b"\0")
    except (OSError, subprocess.CalledProcessError):
        return None
    paths = [os.path.join(ROOT, p.decode()) for p in listed if p]
    return sum(os.path.getsize(p) for p in paths if os.path.isfile(p))


def fetch_wheels(folder, versions):
    """`pip download --no-deps` of the device's wheels; returns their paths."""
    os.makedirs(folder, exist_ok=True)
    pins = []
    for name in WHEELS:
        version = versions.get(name) or importlib.metadata.version(name)
        for old in glob.glob(os.path.join(folder, f"{name}-*.whl")):
            if not os.path.basename(old).startswith(f"{name}-{version}-"):
                print(f"removing {old} (another version of {name})")
                os.unlink(old)
        pins.append(f"{name}=={version}")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--python-version", DEVICE_PYTHON, "--implementation", "cp", "-d", folder]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    print("$", " ".join(command + pins))
    subprocess.run(command + pins, check=True)
    found = []
    for name in WHEELS:
        matches = sorted(glob.glob(os.path.join(folder, f"{name}-*.whl")))
        if len(matches) != 1:
            raise SystemExit(f"expected one {name} wheel in {folder}; found {matches}")
        found += matches
    return found


def main(argv=None):
    args = parse_args(argv)
    data_dir, output = os.path.abspath(args.data_dir), os.path.abspath(args.output)
    if not os.path.isdir(data_dir):
        raise SystemExit(f"CamVid is not at {data_dir} (--data_dir).")
    if os.path.exists(output):
        if not os.path.isfile(os.path.join(output, "manifest.json")):
            raise SystemExit(f"{output} exists and is not a pack (no manifest.json); "
                             "refusing to replace it.")
        shutil.rmtree(output)
    os.makedirs(output)
    manifest = {"source": data_dir, "jpeg_quality": args.quality,
                "jpeg_subsampling": {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}[args.subsampling],
                "labels": "original PNGs, copied byte for byte", "splits": {}}
    limits = {"train": args.max_train, "val": args.max_val}
    for split in SPLITS:
        count, image_bytes, label_bytes, diffs, squared, pixels = pack_split(
            data_dir, output, split, limits[split], args.quality, args.subsampling)
        mse = squared / pixels
        psnr = float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
        manifest["splits"][split] = {
            "images": count, "image_bytes": image_bytes, "label_bytes": label_bytes,
            "mean_abs_diff": float(np.mean(diffs)), "worst_image_mean_abs_diff": max(diffs),
            "psnr_db": round(float(psnr), 2)}
        print(f"{split}: {count} frames, JPEG {image_bytes / MIB:.1f} MiB, labels "
              f"{label_bytes / MIB:.1f} MiB; JPEG q{args.quality} vs the original PNG: mean "
              f"|diff| {np.mean(diffs):.2f} levels of 255 (worst frame {max(diffs):.2f}), "
              f"PSNR {psnr:.1f} dB")
    palette = os.path.join(data_dir, "palette11.png")
    if os.path.isfile(palette):
        shutil.copyfile(palette, os.path.join(output, "palette11.png"))
    with open(os.path.join(output, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    pack = disk_size(output)
    print(f"pack: {output}: {pack:,} bytes ({pack / MIB:.1f} MiB)")
    wheels = 0
    if not args.no_wheels:
        versions = {name: getattr(args, f"{name}_version") for name in WHEELS}
        paths = fetch_wheels(os.path.abspath(args.wheels_dir), versions)
        wheels = sum(os.path.getsize(p) for p in paths)
        print(f"wheels: {', '.join(os.path.basename(p) for p in paths)}: {wheels / MIB:.1f} MiB")
    tree = tree_bytes()
    if tree is not None:
        total = tree + pack + wheels
        print(f"travels to the device: tree {tree / MIB:.1f} MiB + pack {pack / MIB:.1f} MiB + "
              f"wheels {wheels / MIB:.1f} MiB = {total / MIB:.1f} MiB of the 64 MiB limit")
        if total > TRAVEL_LIMIT:
            print(f"WARNING: over the device's 64 MiB working-tree limit by "
                  f"{(total - TRAVEL_LIMIT) / MIB:.1f} MiB: the tracked tree alone is "
                  f"{tree / MIB:.1f} MiB (the bundled models are most of it); lower --quality "
                  "(e.g. 80), or pack fewer val frames (--max_val), until it fits")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
