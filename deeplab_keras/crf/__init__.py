"""Dense-CRF building blocks: an O(N) permutohedral-lattice Gaussian filter in `keras.ops`."""

from deeplab_keras.crf.lattice import build_lattice
from deeplab_keras.crf.lattice import compact_lattice
from deeplab_keras.crf.lattice import exact_gaussian_filter
from deeplab_keras.crf.lattice import exact_normalized_filter
from deeplab_keras.crf.lattice import image_features
from deeplab_keras.crf.lattice import lattice_filter
from deeplab_keras.crf.lattice import lattice_ok
from deeplab_keras.crf.lattice import normalization
from deeplab_keras.crf.lattice import normalized_filter
from deeplab_keras.crf.lattice import normalized_filter_fn

__all__ = ["build_lattice", "compact_lattice", "exact_gaussian_filter",
           "exact_normalized_filter", "image_features", "lattice_filter", "lattice_ok",
           "normalization", "normalized_filter", "normalized_filter_fn"]
