"""Fetches one URL with deeplab_keras.weights.download and prints `OK <path> <sha256>`.

Run by tests/test_weights_download.py (8 concurrent cold starts, SIGKILL mid-download).
`deeplab_keras.weights.download` imports neither keras nor TensorFlow, so the worker starts in
milliseconds.

Usage: download_worker.py URL NAME [--sha256 HEX] [--size N]
The cache folder comes from DEEPLAB_KERAS_CACHE.
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from deeplab_keras import files  # noqa: E402
from deeplab_keras.weights import download  # noqa: E402

assert "keras" not in sys.modules, "the download worker must not import keras"

parser = argparse.ArgumentParser()
parser.add_argument("url")
parser.add_argument("name")
parser.add_argument("--sha256", default=None)
parser.add_argument("--size", type=int, default=None)
args = parser.parse_args()

path = download.fetch(args.url, name=args.name, sha256=args.sha256, size=args.size,
                      progress=False, retries=1, timeout=30)
sha = files.sha256_file(path)
print(f"OK {path} {sha}", flush=True)
sys.exit(0)
