"""The permutohedral lift shared by both lattice builds (`lattice`, `lattice_tf`)."""

import math

import numpy as np


def elevation_matrix(d):
    """(d, d+1) matrix E so that ``features @ E`` is the scaled lift onto sum = 0.

    Feature i is scaled by ``sqrt(2/3) (d+1) / sqrt((i+1)(i+2))`` (pydensecrf's constants), then
    lifted onto the hyperplane ``sum = 0`` of R^{d+1}.

    Example:

    ```python
    elevation_matrix(5).shape  # (5, 6)
    ```
    """
    scale = np.array([math.sqrt(2.0 / 3.0) * (d + 1) / math.sqrt((i + 1) * (i + 2))
                      for i in range(d)])
    e = np.zeros((d + 1, d))
    for j in range(d + 1):
        e[j, j:] = 1.0
        if j > 0:
            e[j, j - 1] = -j
    return (e * scale[None, :]).T.astype("float32")


__all__ = ["elevation_matrix"]
