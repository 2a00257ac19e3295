"""TensorFlow-native permutohedral lattice: 64-bit keys, hashing and sparse matmuls.

Same lattice, same filter and the same conventions as `deeplab_keras.crf.lattice` (read its
docstring first); only the data structures differ, which makes the dense CRF several times
faster on TensorFlow:

* **Keys** are packed into one int64 per lattice point with a mixed radix (each coordinate
  offset by its minimum, the radix its span plus a margin of d+1 on both sides), so a
  neighbour's key is the vertex key plus a constant and cannot alias another vertex.
* **Deduplication** runs twice through `tf.unique` (a hash map): first the N pixels' enclosing
  simplices (many pixels share one), then the (d+1) vertices of each distinct simplex. Vertex
  ids are renumbered in sorted-key (lexicographic) order, as in the sort build, and the
  neighbours are found by `tf.searchsorted` over sorted queries.
* **Splat and slice** are one sparse [N, M+1] barycentric matrix used by
  `tf.sparse.sparse_dense_matmul` (slice) and its adjoint (splat): no [N, d+1, C] temporaries.
  Both are linear in the values, so TensorFlow's registered gradients give the exact adjoint.

Runs inside `tf.function` with unknown image sizes (M is a dynamic size). Imported only on the
TensorFlow backend.
"""

import functools
import os

import numpy as np
import tensorflow as tf

from deeplab_keras.crf.elevation import elevation_matrix

_MAX_KEY_SPACE = 2.0**62


def _elevate(features):
    return tf.matmul(features, tf.constant(elevation_matrix(features.shape[1])))


def _simplex(elevated):
    """Per pixel: remainder-0 point [N, d+1] int32, ranks [N, d+1] int32, barycentric [N, d+1]."""
    dp1 = elevated.shape[1]
    d = dp1 - 1
    down = tf.floor(elevated / dp1) * dp1
    up = tf.math.ceil(elevated / dp1) * dp1
    rem0 = tf.where(up - elevated < elevated - down, up, down)
    coord_sum = tf.cast(tf.round(tf.reduce_sum(rem0, 1, keepdims=True) / dp1), tf.int32)
    res = tf.unstack(elevated - rem0, axis=1)
    # rank_i = #{j: r_j > r_i} + #{j < i: r_j == r_i}, from the d(d+1)/2 pairwise compares.
    rank = [tf.zeros_like(coord_sum[:, 0]) for _ in range(dp1)]
    for i in range(dp1):
        for j in range(i + 1, dp1):
            i_not_below = tf.cast(res[i] >= res[j], tf.int32)
            rank[j] += i_not_below
            rank[i] += 1 - i_not_below
    rank = tf.stack(rank, axis=1)
    pos = tf.logical_and(coord_sum > 0, rank >= dp1 - coord_sum)
    neg = tf.logical_and(coord_sum < 0, rank < -coord_sum)
    shift = tf.cast(neg, tf.int32) - tf.cast(pos, tf.int32)
    rem0 = tf.cast(rem0, tf.int32) + dp1 * shift
    rank = rank + coord_sum + dp1 * shift
    v = (elevated - tf.cast(rem0, tf.float32)) / dp1
    bary = tf.reduce_sum(v[:, :, None] * (tf.one_hot(d - rank, d + 2)
                                          - tf.one_hot(dp1 - rank, d + 2)), axis=1)
    bary = tf.concat([bary[:, :1] + 1.0 + bary[:, dp1:], bary[:, 1:dp1]], axis=1)
    return rem0, rank, bary


def _mixed_radix(digits, margin):
    """Offsets, radix multipliers (int64) and the key-space size for [K, d] int32 digits.

    The first digit is the most significant, so sorted keys are in lexicographic order.
    """
    low = tf.reduce_min(digits, axis=0) - margin
    span = tf.cast(tf.reduce_max(digits, axis=0) + margin - low + 1, tf.int64)
    mult = tf.math.cumprod(span, exclusive=True, reverse=True)
    return low, mult, tf.reduce_prod(tf.cast(span, tf.float64))


def _encode(digits, low, mult):
    return tf.reduce_sum(tf.cast(digits - low, tf.int64) * mult, axis=1)


def _check_key_space(size):
    return tf.debugging.assert_less(
        size, tf.constant(_MAX_KEY_SPACE, tf.float64),
        message="DenseCRF lattice: the lattice keys do not fit in 64 bits (image too large "
                "for these thetas); use larger theta_alpha/theta_beta or a smaller image.")


def _simplex_keys(elevated):
    """`_simplex` plus each pixel's simplex key: (rem0, rank, bary, keys, key-space size).
    Run through `_compiled_simplex_keys` (XLA: one fused pass instead of ~100 TensorFlow ops
    over [N] vectors, 6x faster on CPU).

    The lift `_elevate` stays outside: XLA's matmul rounds differently, which would move pixels
    that sit exactly on a simplex boundary away from the "sort" build's choice."""
    d = elevated.shape[1] - 1
    rem0, rank, bary = _simplex(elevated)
    simplex_digits = tf.concat([rem0[:, :d] // (d + 1), rank[:, :d]], axis=1)
    low, mult, size = _mixed_radix(simplex_digits, 0)
    return rem0, rank, bary, _encode(simplex_digits, low, mult), size


@functools.lru_cache(maxsize=None)
def _compiled_simplex_keys(dp1):
    """`_simplex_keys` for [N, dp1] inputs under XLA: traced once per dp1, compiled per N."""
    return tf.function(_simplex_keys, jit_compile=True,
                       input_signature=[tf.TensorSpec([None, dp1], tf.float32)])


def _padded_simplex_keys(elevated):
    """`_compiled_simplex_keys` on rows padded to a bucket size, so that XLA compiles once per
    bucket (at most 8 per doubling of N, under 12.5% padding) rather than once per image size
    (~0.35 s each). The padding repeats the first row, which leaves the key ranges unchanged."""
    num_pixels = tf.shape(elevated)[0]
    bits = tf.cast(tf.math.floor(tf.math.log(tf.cast(num_pixels, tf.float32)) / np.log(2.0)),
                   tf.int32)
    step = tf.bitwise.left_shift(1, tf.maximum(10, bits - 3))
    padded = (num_pixels + step - 1) // step * step
    elevated = tf.concat([elevated, tf.repeat(elevated[:1], padded - num_pixels, axis=0)], 0)
    outputs = _compiled_simplex_keys(elevated.shape[1])(elevated)
    return tuple(t[:num_pixels] for t in outputs[:4]) + (outputs[4],)


def _parallel_unique(keys, parts):
    """`tf.unique` of int64 keys in ``parts`` slices that run concurrently (TensorFlow's kernel
    is single-threaded), then of the slices' tables: the same table entries and index map
    (entries in a different order). 35 -> 20 ms for the 600k vertex keys of a 500x375 image
    on 2 cores."""
    if parts == 1:
        return tf.unique(keys, out_idx=tf.int32)
    count = tf.shape(keys)[0]
    cuts = [0] + [count * k // parts for k in range(1, parts)] + [count]
    pieces = [tf.unique(keys[a:b], out_idx=tf.int32) for a, b in zip(cuts[:-1], cuts[1:])]
    table, index = tf.unique(tf.concat([t for t, _ in pieces], axis=0), out_idx=tf.int32)
    offsets = tf.math.cumsum([tf.shape(t)[0] for t, _ in pieces], exclusive=True)
    return table, tf.concat([tf.gather(index, i + offsets[k])
                             for k, (_, i) in enumerate(pieces)], axis=0)


def build_lattice(features):
    """Lattice of ``features`` [N, d] (already divided by the thetas), TensorFlow only.

    Returns a dict: ``slice`` (tf.SparseTensor [N, M+1] of barycentric weights),
    ``vertex_ids`` and ``barycentric`` [N, d+1], ``num_vertices`` M, ``n1``/``n2`` [d+1, M+1]
    neighbour ids per direction (missing ones and the dummy row M point at M).
    """
    features = tf.convert_to_tensor(features, tf.float32)
    d = features.shape[1]
    dp1 = d + 1
    num_pixels = tf.shape(features)[0]
    rem0, rank, bary, simplex_keys, size = _padded_simplex_keys(_elevate(features))
    with tf.control_dependencies([_check_key_space(size)]):
        simplex_keys = tf.identity(simplex_keys)
    unique_simplices, simplex_of_pixel = tf.unique(simplex_keys, out_idx=tf.int32)
    first_pixel = tf.math.unsorted_segment_min(
        tf.range(num_pixels), simplex_of_pixel, tf.shape(unique_simplices)[0])
    rem0_s, rank_s = tf.gather(rem0, first_pixel), tf.gather(rank, first_pixel)

    # Vertex r of a simplex: rem0 + r, minus (d+1) where rank > d - r (first d coordinates).
    r = np.arange(dp1, dtype="int32")
    wrap = tf.cast(rank_s[:, None, :d] > (d - r)[None, :, None], tf.int32)
    vertex_digits = tf.reshape(rem0_s[:, None, :d] + r[None, :, None] - dp1 * wrap, (-1, d))
    low, mult, size = _mixed_radix(vertex_digits, dp1)
    with tf.control_dependencies([_check_key_space(size)]):
        vertex_keys = _encode(vertex_digits, low, mult)
    table, vertex_of_entry = _parallel_unique(vertex_keys, default_blocks())
    num_vertices = tf.shape(table)[0]

    # Renumber the vertices in sorted-key (lexicographic) order: lattice neighbours along
    # the blur directions then sit in nearby rows (measured faster than raster or Z order).
    order = tf.argsort(table)
    sorted_table = tf.gather(table, order)
    new_id = tf.scatter_nd(order[:, None], tf.range(num_vertices), [num_vertices])
    vertex_ids = tf.gather(tf.reshape(tf.gather(new_id, vertex_of_entry), (-1, dp1)),
                           simplex_of_pixel)
    dummy = num_vertices
    # n1[j] (key + delta_j) by binary search; n2[j] (key - delta_j) is its inverse map, since
    # a translation is injective: n1[j][i] == k  <=>  n2[j][k] == i.
    rows = tf.range(num_vertices)
    n1s, n2s = [], []
    for j in range(dp1):
        step = np.full((d,), -1, "int64")
        if j < d:
            step[j] += dp1
        query = sorted_table + tf.reduce_sum(tf.constant(step) * mult)
        pos = tf.minimum(tf.searchsorted(sorted_table, query, out_type=tf.int32),
                         num_vertices - 1)
        n1 = tf.where(tf.equal(tf.gather(sorted_table, pos), query), pos, dummy)
        inverse = tf.math.unsorted_segment_max(rows, n1, num_vertices + 1)[:num_vertices]
        n1s.append(tf.concat([n1, [dummy]], axis=0))
        n2s.append(tf.concat([tf.where(inverse >= 0, inverse, dummy), [dummy]], axis=0))

    pixel = tf.repeat(tf.range(num_pixels, dtype=tf.int64), dp1)
    indices = tf.stack([pixel, tf.cast(tf.reshape(vertex_ids, (-1,)), tf.int64)], axis=1)
    shape = tf.cast(tf.stack([num_pixels, num_vertices + 1]), tf.int64)
    slice_matrix = tf.sparse.SparseTensor(indices, tf.reshape(bary, (-1,)), shape)
    return dict(method="hash", slice=slice_matrix, vertex_ids=vertex_ids, barycentric=bary,
                num_vertices=num_vertices, n1=tf.stack(n1s), n2=tf.stack(n2s),
                key_range=tf.constant(0, tf.int32))


def _blur(lattice, v, transpose):
    """Blur [M+1, C] splatted values along the d+1 directions, unscaled.

    Each direction computes ``2 v + v[n1] + v[n2]`` (one AddN pass), i.e. twice the
    [1 2 1]/2 blur; `_output_scale` undoes the factor 2^(d+1) together with pydensecrf's alpha.
    """
    n1, n2 = lattice["n1"], lattice["n2"]
    d = n1.shape[0] - 1
    for j in (range(d, -1, -1) if transpose else range(d + 1)):
        v = tf.add_n([v, v, tf.gather(v, n1[j]), tf.gather(v, n2[j])])
    return v


def _output_scale(lattice):
    d = lattice["n1"].shape[0] - 1
    return 2.0 ** -(d + 1) / (1.0 + 2.0 ** (-d))


def lattice_filter(lattice, values, transpose=False):
    """Approximate Gaussian filter of values [N, C]; see `lattice.lattice_filter`."""
    values = tf.convert_to_tensor(values, tf.float32)
    v = tf.sparse.sparse_dense_matmul(lattice["slice"], values, adjoint_a=True)
    v = _blur(lattice, v, transpose)
    return tf.sparse.sparse_dense_matmul(lattice["slice"], v) * _output_scale(lattice)


def normalized_filter_fn(lattice, norm, weight=1.0, blocks=1):
    """``q -> weight * norm * F(norm * q)`` with the scalings folded into the sparse matrices.

    The splat matrix carries ``norm`` and the slice matrix ``weight * norm * alpha``, so each
    call is one splat, the blur and one slice, without extra passes over [N, C].

    ``blocks`` > 1 splits the pixels into that many row blocks, each with its own splat and
    slice matrix: TensorFlow's sparse matmul kernels are single-threaded, and the blocks'
    matmuls run concurrently on the CPU cores (the splat blocks read the whole [N, C] input,
    each only its own rows; the slice blocks' outputs are concatenated).
    """
    sparse = lattice["slice"]
    dp1 = lattice["n1"].shape[0]
    norm_entry = tf.repeat(tf.reshape(norm, (-1,)), dp1)
    splat_values = sparse.values * norm_entry
    slice_values = splat_values * (weight * _output_scale(lattice))
    num_pixels = tf.shape(norm_entry)[0] // dp1
    cuts = [0] + [num_pixels * k // blocks for k in range(1, blocks)] + [num_pixels]
    splats, slices = [], []
    for start, stop in zip(cuts[:-1], cuts[1:]):
        entries = slice(start * dp1, stop * dp1)
        indices = sparse.indices[entries]
        splats.append(tf.sparse.SparseTensor(indices, splat_values[entries], sparse.dense_shape))
        slices.append(tf.sparse.SparseTensor(
            indices - tf.stack([tf.cast(start, tf.int64), 0]), slice_values[entries],
            tf.stack([tf.cast(stop - start, tf.int64), sparse.dense_shape[1]])))

    def apply(values):
        v = tf.add_n([tf.sparse.sparse_dense_matmul(splat, values, adjoint_a=True)
                      for splat in splats])
        v = _blur(lattice, v, False)
        out = [tf.sparse.sparse_dense_matmul(slice_, v) for slice_ in slices]
        return out[0] if blocks == 1 else tf.concat(out, axis=0)

    return apply


def default_blocks():
    """Pixel blocks for `normalized_filter_fn`: one per CPU core (at most 4) without a GPU.

    Measured on 2 cores: 2 blocks make the dense CRF about 10% faster than 1; 4 no better.
    """
    if tf.config.list_logical_devices("GPU"):
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, cores or 1))
