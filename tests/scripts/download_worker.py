"""Fetches one URL with deeplab_keras.weights.download and prints `OK <path> <sha256>`.

Run by tests/test_weights_download.py (8 concurrent cold starts, SIGKILL mid-download).
download.py is loaded straight from its file, so the worker starts in milliseconds without
importing keras or TensorFlow.

Usage: download_worker.py URL NAME [--sha256 HEX] [--size N]
The cache folder comes from DEEPLAB_KERAS_CACHE.
"""

import argparse
import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location(
    "deeplab_keras_weights_download", os.path.join(ROOT, "deeplab_keras", "weights", "download.py"))
download = importlib.util.module_from_spec(spec)
spec.loader.exec_module(download)

parser = argparse.ArgumentParser()
parser.add_argument("url")
parser.add_argument("name")
parser.add_argument("--sha256", default=None)
parser.add_argument("--size", type=int, default=None)
args = parser.parse_args()

path = download.fetch(args.url, name=args.name, sha256=args.sha256, size=args.size,
                      progress=False, retries=1, timeout=30)
sha = download.sha256_file(path)
print(f"OK {path} {sha}", flush=True)
sys.exit(0)
