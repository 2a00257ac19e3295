"""Permutohedral-lattice Gaussian filtering in O(N), written with `keras.ops` only.

This is the approximate high-dimensional Gaussian filter of Adams, Baek & Davis (2010), with
the constants and conventions of Krähenbühl's dense-CRF code (pydensecrf), so that
``normalized_filter`` approximates pydensecrf's symmetrically normalised pairwise kernel.
It runs unchanged on the TensorFlow and JAX backends (JAX without x64). On TensorFlow,
``build_lattice`` defaults to ``method="hash"`` (`deeplab_keras.crf.lattice_tf`): the same
lattice built with 64-bit keys and `tf.unique`, filtered with sparse matmuls; what follows
describes the backend-independent ``method="sort"`` build.

Conventions (N pixels, d feature dimensions, features already divided by the thetas, so the
target kernel is ``k(i, j) = exp(-|f_i - f_j|^2 / 2)``):

1. **Scale** feature i by ``sqrt(2/3) (d+1) / sqrt((i+1)(i+2))``.
2. **Lift** to the hyperplane ``sum = 0`` of R^{d+1} with a fixed (d+1) x d matrix, **round**
   each coordinate to the nearest multiple of d+1, fix the coordinate sum by moving the
   extreme residuals, and **rank** the residuals ((d+1)^2 compares). This gives the enclosing
   simplex: d+1 lattice vertices (integer keys; the first d coordinates identify a vertex)
   and barycentric weights that sum to 1.
3. **Deduplicate** the N(d+1) keys without hashing and without 64-bit integers: the d
   coordinates are shifted to be positive and packed two per int32 word (15 bits each, the
   same per-coordinate budget as pydensecrf's ``short`` keys), the words are sorted
   lexicographically by successive stable ``argsort`` passes, equal neighbours in sorted order
   share an id (``cumsum`` of "differs from previous"). Ids are therefore dense and
   lexicographically ordered.
4. **Neighbours**: for each direction j = 0..d the neighbour ``key - 1 + (d+1) e_j`` (for j = d
   just ``key - 1``) is found by a fixed-step lexicographic binary search in the sorted vertex
   table; the opposite neighbour is obtained by inverting that map (translation is injective).
   Missing neighbours point at a dummy row that is always zero.
5. **Filter** (linear in the values, so autodiff gives the exact adjoint):
   splat ``V = segment_sum(bary * values)``; blur ``V <- V + (V[n1] + V[n2]) / 2`` for each
   direction in order 0..d ([1 2 1]/2 with missing neighbours counted as 0); slice
   ``out = alpha * sum_k bary_k V[vertex_k]`` with ``alpha = 1 / (1 + 2^-d)``. The self term
   is kept. ``transpose=True`` runs the blur directions in reverse, which is the exact
   transpose of the forward filter.
6. **Normalisation** (pydensecrf ``NORMALIZE_SYMMETRIC``): ``s = 1/sqrt(F(1) + 1e-20)``,
   ``out = s * F(s * Q)``.

Static shapes: the vertex table is padded to its bound R = N(d+1) rows (+1 dummy row, index R),
so ``build_lattice`` and ``lattice_filter`` can be jitted on JAX. Rows between M and R stay
zero. ``compact_lattice`` (eager only) trims the tables to the M used rows, with the dummy row
at index M, which makes filtering several times cheaper when M << N(d+1).
"""

import functools
import math

import keras
import numpy as np
from keras import ops

from deeplab_keras.crf.elevation import elevation_matrix

_BITS = 15  # bits per packed key coordinate (pydensecrf stores keys as 16-bit shorts)
_INT32_MAX = 2**31 - 1


def _pack(keys, d):
    """[..., d] int32 coordinates in [0, 2^15) -> [..., ceil(d/2)] int32 words, lexicographic."""
    words = []
    for w in range(0, d, 2):
        hi = keys[..., w] * (2**_BITS)
        words.append(hi + keys[..., w + 1] if w + 1 < d else hi)
    return ops.stack(words, axis=-1)


def _lex_less(a, b):
    """Row-wise lexicographic a < b for [..., W] int32 words."""
    less = a[..., -1] < b[..., -1]
    for w in range(a.shape[-1] - 2, -1, -1):
        less = ops.logical_or(a[..., w] < b[..., w],
                              ops.logical_and(a[..., w] == b[..., w], less))
    return less


def _num_rows(t):
    """Static row count where known, else the dynamic one (TF graphs after compaction)."""
    return t.shape[0] if t.shape[0] is not None else ops.shape(t)[0]


def _lex_search(table, num_valid, queries, max_rows=None):
    """Index of each query row in the sorted ``table`` [R, W] (rows >= num_valid are +inf).

    Fixed-step lexicographic lower-bound binary search; returns (index, found). `max_rows`
    is a static bound on R that fixes the number of steps when R itself is dynamic.
    """
    rows = _num_rows(table)
    max_rows = max_rows or rows
    lo = ops.zeros(ops.shape(queries)[:1], "int32")
    hi = ops.zeros(ops.shape(queries)[:1], "int32") + ops.cast(rows, "int32")

    def step(_, bounds):
        lo, hi = bounds
        active = lo < hi
        mid = ops.minimum(ops.floor_divide(lo + hi, 2), rows - 1)
        less = _lex_less(ops.take(table, mid, axis=0), queries)
        lo = ops.where(ops.logical_and(active, less), mid + 1, lo)
        hi = ops.where(ops.logical_and(active, ops.logical_not(less)), mid, hi)
        return lo, hi

    # A real loop (not unrolled): unrolled, XLA fuses the steps and recomputes them.
    # With a dynamic size (TF graph of unknown image size), 31 steps cover any int32 size.
    steps = 31 if max_rows is None or not isinstance(max_rows, int) else max(
        1, int(math.ceil(math.log2(max_rows + 1))))
    lo, hi = ops.fori_loop(0, steps, step, (lo, hi))
    at = ops.take(table, ops.minimum(lo, rows - 1), axis=0)
    found = ops.logical_and(lo < num_valid, ops.all(at == queries, axis=-1))
    return lo, found


def _neighbours(table_keys, table_words, num_valid, max_rows=None):
    """Neighbour ids [d+1, R+1] (n1, n2) of every vertex row; missing -> dummy row R."""
    d = table_keys.shape[1]
    rows = _num_rows(table_keys)
    dummy = ops.cast(rows, "int32")
    row_ids = ops.arange(rows, dtype="int32")
    valid = row_ids < num_valid
    n1s, n2s = [], []
    for j in range(d + 1):
        step = np.full((d,), -1, "int32")
        if j < d:
            step[j] += d + 1
        query = _pack(table_keys + step[None, :], d)
        pos, found = _lex_search(table_words, num_valid, query, max_rows)
        found = ops.logical_and(found, valid)
        n1 = ops.where(found, pos, dummy)
        # n2 is the inverse map of n1: n2[n1[u]] = u.
        inv = ops.segment_sum(ops.where(found, row_ids + 1, 0), n1, num_segments=rows + 1)
        n2 = ops.where(inv[:rows] > 0, inv[:rows] - 1, dummy)
        n1s.append(ops.concatenate([n1, ops.reshape(dummy, (1,))]))
        n2s.append(ops.concatenate([n2, ops.reshape(dummy, (1,))]))
    return ops.stack(n1s), ops.stack(n2s)


def _embed(features):
    """Per-pixel simplex: keys [N, d+1, d] int32 and barycentric weights [N, d+1] float32."""
    features = ops.convert_to_tensor(features, "float32")
    d = features.shape[1]
    dp1 = d + 1
    elevated = ops.matmul(features, ops.convert_to_tensor(elevation_matrix(d)))  # [N, d+1]
    down = ops.floor(elevated / dp1) * dp1
    up = ops.ceil(elevated / dp1) * dp1
    rem0 = ops.where(up - elevated < elevated - down, up, down)
    coord_sum = ops.cast(ops.round(ops.sum(rem0, axis=1, keepdims=True) / dp1), "int32")
    # Rank residuals: rank_i = #{j: r_j > r_i} + #{j < i: r_j == r_i}.
    res = elevated - rem0
    ri, rj = res[:, :, None], res[:, None, :]
    earlier = np.tril(np.ones((dp1, dp1), bool), -1)  # [i, j] = j < i
    beats = ops.logical_or(rj > ri, ops.logical_and(rj == ri, earlier[None]))
    rank = ops.sum(ops.cast(beats, "int32"), axis=2)
    # Move the extreme residuals so the rounded point has coordinate sum 0.
    pos = ops.logical_and(coord_sum > 0, rank >= dp1 - coord_sum)
    neg = ops.logical_and(coord_sum < 0, rank < -coord_sum)
    shift = ops.cast(neg, "int32") - ops.cast(pos, "int32")
    rem0 = ops.cast(rem0, "int32") + dp1 * shift
    rank = rank + coord_sum + dp1 * shift
    # Barycentric weights.
    v = (elevated - ops.cast(rem0, "float32")) / dp1
    bary = ops.sum(v[:, :, None] * (ops.one_hot(d - rank, d + 2)
                                    - ops.one_hot(dp1 - rank, d + 2)), axis=1)
    bary = ops.concatenate([bary[:, :1] + 1.0 + bary[:, dp1:], bary[:, 1:dp1]], axis=1)
    # Vertex r of the simplex: rem0 + r, minus (d+1) where rank > d - r (first d coordinates).
    r = np.arange(dp1, dtype="int32")
    wrap = ops.cast(rank[:, None, :d] > (d - r)[None, :, None], "int32")
    keys = rem0[:, None, :d] + r[None, :, None] - dp1 * wrap
    return keys, bary


def _dedup(keys):
    """Dense lexicographic ids of the [N, d+1, d] keys and the padded sorted vertex table."""
    d = keys.shape[2]
    keys = ops.reshape(keys, (-1, d))
    rows = _num_rows(keys)
    # Shift so that keys and their neighbours (key - 1 .. key + d) are in [0, 2^15).
    keys = keys - ops.min(keys, axis=0, keepdims=True) + 1
    key_range = ops.max(keys) + d
    words = _pack(keys, d)
    # Lexicographic sort: stable argsort from the least significant word.
    perm = ops.arange(rows, dtype="int32")
    for w in range(words.shape[1] - 1, -1, -1):
        perm = ops.take(perm, ops.argsort(ops.take(words[:, w], perm)))
    sorted_words = ops.take(words, perm, axis=0)
    sorted_keys = ops.take(keys, perm, axis=0)
    differs = ops.any(sorted_words[1:] != sorted_words[:-1], axis=1)
    is_new = ops.concatenate([ops.ones((1,), "int32"), ops.cast(differs, "int32")])
    sorted_ids = ops.cumsum(is_new) - 1
    num_vertices = sorted_ids[-1] + 1
    vertex_ids = ops.segment_sum(sorted_ids, perm, num_segments=rows)
    table_keys = ops.segment_max(sorted_keys, sorted_ids, num_segments=rows)
    table_words = ops.segment_max(sorted_words, sorted_ids, num_segments=rows)
    used = (ops.arange(rows, dtype="int32") < num_vertices)[:, None]
    table_words = ops.where(used, table_words, _INT32_MAX)
    table_keys = ops.where(used, table_keys, 0)
    return vertex_ids, num_vertices, table_keys, table_words, key_range


@functools.lru_cache(maxsize=None)
def _compiled(fn, static_argnums=()):
    """On JAX, run a build stage as one jitted program (eager JAX dispatches op by op)."""
    if keras.backend.backend() != "jax":
        return fn
    import jax

    return jax.jit(fn, static_argnums=static_argnums)


def default_method():
    """"hash" (int64 keys, `deeplab_keras.crf.lattice_tf`) on TensorFlow, else "sort"."""
    return "hash" if keras.backend.backend() == "tensorflow" else "sort"


def METHODS_AVAILABLE():  # noqa: N802 (reads as a constant)
    """Build methods that run on the active backend."""
    return ("sort", "hash") if keras.backend.backend() == "tensorflow" else ("sort",)


def build_lattice(features, compact=False, method=None):
    """Build the permutohedral lattice of ``features`` [N, d] (already divided by the thetas).

    ``method="sort"`` is the backend-independent build described in the module docstring;
    ``method="hash"`` (TensorFlow only, the default there) is `lattice_tf.build_lattice`: the
    same lattice with 64-bit keys, `tf.unique` and sparse splat/slice, several times faster.
    Both give the same filter; `lattice_filter` and friends accept either.

    Returns a dict of tensors:
      ``vertex_ids`` [N, d+1] int32, ``barycentric`` [N, d+1] float32, ``num_vertices`` M
      (int32 scalar), ``n1``/``n2`` [d+1, R+1] int32 neighbour ids per direction (R = N(d+1),
      or M with ``compact=True``; missing neighbours and the dummy row itself point at row R),
      and ``key_range`` (int32 scalar, largest per-coordinate key span; must stay below
      2^15 - d - 2, i.e. ``lattice_ok(lattice)``).
    ``compact=True`` trims the vertex table to M rows before the neighbour search; it needs
    concrete values (eager) or a TensorFlow graph (which allows the dynamic size M); not JAX jit.
    """
    method = method or default_method()
    if method == "hash":
        if keras.backend.backend() != "tensorflow":
            raise ValueError("build_lattice(method='hash') needs the TensorFlow backend; "
                             f"the backend is {keras.backend.backend()!r}. Use method='sort'.")
        from deeplab_keras.crf import lattice_tf

        return lattice_tf.build_lattice(features)
    if method != "sort":
        raise ValueError(f"build_lattice: method must be 'sort' or 'hash'; received {method!r}.")
    keys, bary = _compiled(_embed)(features)
    dp1 = keys.shape[1]
    vertex_ids, num_vertices, table_keys, table_words, key_range = _compiled(_dedup)(keys)
    vertex_ids = ops.reshape(vertex_ids, (-1, dp1))
    max_rows = table_keys.shape[0]
    if compact:
        m = _vertex_count(num_vertices)
        table_keys, table_words = table_keys[:m], table_words[:m]
    n1, n2 = _compiled(_neighbours, (3,))(table_keys, table_words, num_vertices, max_rows)
    return dict(method="sort", vertex_ids=vertex_ids, barycentric=bary, num_vertices=num_vertices,
                n1=n1, n2=n2, key_range=key_range)


def _vertex_count(num_vertices):
    """M as a Python int when concrete; inside a TensorFlow graph, the scalar tensor itself."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if not tf.executing_eagerly():
            return num_vertices
    return int(ops.convert_to_numpy(num_vertices))


def compact_supported():
    """Whether `build_lattice(..., compact=True)` works here: always on TensorFlow (dynamic
    shapes are allowed in graphs), and on other backends only outside jit."""
    return keras.backend.backend() == "tensorflow"


def lattice_ok(lattice):
    """True when no packed key coordinate overflowed its 15-bit budget."""
    return bool(ops.convert_to_numpy(lattice["key_range"]) < 2**_BITS)


def lattice_filter(lattice, values, transpose=False):
    """Approximate Gaussian filter: values [N, C] -> [N, C] (un-normalised, self term kept).

    ``transpose=True`` applies the exact transpose (blur directions in reverse order).
    """
    if lattice["method"] == "hash":
        from deeplab_keras.crf import lattice_tf

        return lattice_tf.lattice_filter(lattice, values, transpose)
    values = ops.convert_to_tensor(values, "float32")
    ids, bary = lattice["vertex_ids"], lattice["barycentric"]
    n1, n2 = lattice["n1"], lattice["n2"]
    dp1 = ids.shape[1]
    d = dp1 - 1
    c = values.shape[-1]
    rows = n1.shape[1] if n1.shape[1] is not None else ops.shape(n1)[1]
    splat = ops.reshape(bary[:, :, None] * values[:, None, :], (-1, c))
    v = ops.segment_sum(splat, ops.reshape(ids, (-1,)), num_segments=rows)
    order = range(d, -1, -1) if transpose else range(dp1)
    for j in order:
        v = v + 0.5 * (ops.take(v, n1[j], axis=0) + ops.take(v, n2[j], axis=0))
    alpha = 1.0 / (1.0 + 2.0 ** (-d))
    return alpha * ops.sum(ops.take(v, ids, axis=0) * bary[:, :, None], axis=1)


def normalization(lattice):
    """Symmetric normaliser s = 1/sqrt(F(1) + 1e-20), shape [N, 1]."""
    n = _num_rows(lattice["vertex_ids"])
    return 1.0 / ops.sqrt(lattice_filter(lattice, ops.ones((n, 1), "float32")) + 1e-20)


def normalized_filter(lattice, values, norm=None):
    """pydensecrf NORMALIZE_SYMMETRIC: s * F(s * values), with s from ``normalization``."""
    if norm is None:
        norm = normalization(lattice)
    return norm * lattice_filter(lattice, norm * ops.convert_to_tensor(values, "float32"))


def normalized_filter_fn(lattice, norm=None, weight=1.0):
    """A callable ``q -> weight * normalized_filter(lattice, q, norm)`` for repeated use.

    On a "hash" (TensorFlow) lattice the scalings are folded into the splat and slice
    matrices once, so mean-field iterations pay for no extra passes over the values, and the
    sparse matmuls run in pixel blocks on the CPU cores (`lattice_tf.default_blocks`).
    """
    if norm is None:
        norm = normalization(lattice)
    if lattice["method"] == "hash":
        from deeplab_keras.crf import lattice_tf

        return lattice_tf.normalized_filter_fn(lattice, norm, weight,
                                               lattice_tf.default_blocks())
    return lambda values: weight * normalized_filter(lattice, values, norm)


def compact_lattice(lattice):
    """Eagerly trim a padded ("sort") lattice to its M used vertex rows (dummy row becomes M)."""
    if lattice["method"] == "hash":
        return lattice
    m = int(ops.convert_to_numpy(lattice["num_vertices"]))
    n1, n2 = lattice["n1"], lattice["n2"]

    def trim(t):
        t = ops.concatenate([t[:, :m], t[:, -1:]], axis=1)
        return ops.where(t >= m, m, t)

    return dict(lattice, n1=trim(n1), n2=trim(n2))


def exact_gaussian_filter(features, values):
    """Brute-force O(N^2) numpy reference: sum_j exp(-|f_i - f_j|^2 / 2) values_j (self incl.)."""
    f = np.asarray(features, np.float64)
    sq = np.sum(f * f, axis=1)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2.0 * f @ f.T, 0.0)
    return np.exp(-0.5 * dist) @ np.asarray(values, np.float64)


def exact_normalized_filter(features, values):
    """Symmetric normalisation (as pydensecrf) applied to the exact Gaussian kernel."""
    n = np.asarray(features).shape[0]
    s = 1.0 / np.sqrt(exact_gaussian_filter(features, np.ones((n, 1))) + 1e-20)
    return s * exact_gaussian_filter(features, s * np.asarray(values, np.float64))


def image_features(image, theta_xy, theta_rgb=None):
    """Pixel features [H*W, 2 or 5] as pydensecrf builds them: (x, y[, r, g, b]) / thetas.

    Works on static or dynamic (graph) image sizes; `image` is [H, W, channels].
    """
    image = ops.cast(ops.convert_to_tensor(image), "float32")
    height = image.shape[0] if image.shape[0] is not None else ops.shape(image)[0]
    width = image.shape[1] if image.shape[1] is not None else ops.shape(image)[1]
    xs = ops.cast(ops.arange(width), "float32")
    ys = ops.cast(ops.arange(height), "float32")
    xx = ops.reshape(ops.repeat(xs[None, :], height, axis=0), (-1, 1))
    yy = ops.reshape(ops.repeat(ys[:, None], width, axis=1), (-1, 1))
    feats = [xx / theta_xy, yy / theta_xy]
    if theta_rgb is not None:
        feats.append(ops.reshape(image, (-1, image.shape[-1])) / theta_rgb)
    return ops.concatenate(feats, axis=1)
