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

import numpy as np
import tensorflow as tf

from deeplab_keras.crf import lattice as lattice_lib

_MAX_KEY_SPACE = 2.0**62


def _simplex(features):
    """Per pixel: remainder-0 point [N, d+1] int32, ranks [N, d+1] int32, barycentric [N, d+1]."""
    d = features.shape[1]
    dp1 = d + 1
    elevated = tf.matmul(features, tf.constant(lattice_lib._elevation_matrix(d)))
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
    rem0, rank, bary = _simplex(features)

    simplex_digits = tf.concat([rem0[:, :d] // dp1, rank[:, :d]], axis=1)
    low, mult, size = _mixed_radix(simplex_digits, 0)
    with tf.control_dependencies([_check_key_space(size)]):
        simplex_keys = _encode(simplex_digits, low, mult)
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
    table, vertex_of_entry = tf.unique(vertex_keys, out_idx=tf.int32)
    num_vertices = tf.shape(table)[0]

    # Renumber the vertices in sorted-key (lexicographic) order: lattice neighbours along
    # the blur directions then sit in nearby rows (measured faster than raster or Z order).
    order = tf.argsort(table)
    sorted_table = tf.gather(table, order)
    new_id = tf.scatter_nd(order[:, None], tf.range(num_vertices), [num_vertices])
    vertex_ids = tf.gather(tf.reshape(tf.gather(new_id, vertex_of_entry), (-1, dp1)),
                           simplex_of_pixel)
    dummy = num_vertices
    n1s, n2s = [], []
    for j in range(dp1):
        step = np.full((d,), -1, "int64")
        if j < d:
            step[j] += dp1
        delta = tf.reduce_sum(tf.constant(step) * mult)
        found_ids = []
        for query in (sorted_table + delta, sorted_table - delta):
            pos = tf.minimum(tf.searchsorted(sorted_table, query, out_type=tf.int32),
                             num_vertices - 1)
            found = tf.equal(tf.gather(sorted_table, pos), query)
            found_ids.append(tf.concat([tf.where(found, pos, dummy), [dummy]], axis=0))
        n1s.append(found_ids[0])
        n2s.append(found_ids[1])

    pixel = tf.repeat(tf.range(num_pixels, dtype=tf.int64), dp1)
    indices = tf.stack([pixel, tf.cast(tf.reshape(vertex_ids, (-1,)), tf.int64)], axis=1)
    shape = tf.cast(tf.stack([num_pixels, num_vertices + 1]), tf.int64)
    slice_matrix = tf.sparse.SparseTensor(indices, tf.reshape(bary, (-1,)), shape)
    return dict(slice=slice_matrix, vertex_ids=vertex_ids, barycentric=bary,
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


def normalized_filter_fn(lattice, norm, weight=1.0):
    """``q -> weight * norm * F(norm * q)`` with the scalings folded into the sparse matrices.

    The splat matrix carries ``norm`` and the slice matrix ``weight * norm * alpha``, so each
    call is one splat, the blur and one slice, without extra passes over [N, C].
    """
    sparse = lattice["slice"]
    flat_norm = tf.reshape(norm, (-1,))
    per_entry = tf.gather(flat_norm, sparse.indices[:, 0])
    splat = tf.sparse.SparseTensor(sparse.indices, sparse.values * per_entry, sparse.dense_shape)
    out_weight = per_entry * (weight * _output_scale(lattice))
    slice_ = tf.sparse.SparseTensor(sparse.indices, sparse.values * out_weight,
                                    sparse.dense_shape)

    def apply(values):
        v = tf.sparse.sparse_dense_matmul(splat, values, adjoint_a=True)
        return tf.sparse.sparse_dense_matmul(slice_, _blur(lattice, v, False))

    return apply
