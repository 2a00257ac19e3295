"""The "atrous algorithm": trading a network's last strides for dilation.

Once the running stride of a network reaches the requested output stride,
every later stride is set to 1 and the atrous rate of every later
convolution is multiplied by the stride it replaced (Chen et al., TPAMI 2018,
Sec. 3.1). Weights are untouched; only how the kernels are applied changes.
"""

VALID_OUTPUT_STRIDES = (8, 16, 32)


def check_output_stride(output_stride, allowed=VALID_OUTPUT_STRIDES, who="backbone"):
    if output_stride not in allowed:
        raise ValueError(
            f"{who}: `output_stride` must be one of {tuple(allowed)}; "
            f"received {output_stride!r}."
        )
    return int(output_stride)


class AtrousTracker:
    """Tracks the running stride and atrous rate while a backbone is built.

    Call `step(stride)` at each place the original network subsamples. It
    returns `(stride_to_use, rate_for_that_conv, rate_after)`: the strided
    conv itself still sees the input resolution, so it keeps the current
    rate; every conv after it uses `rate_after`.

    Example:

    ```python
    t = AtrousTracker(output_stride=8, current_stride=4)
    t.step(2)  # (2, 1, 1): running stride 8
    t.step(2)  # (1, 1, 2): stride removed, later convs use rate 2
    ```
    """

    def __init__(self, output_stride, current_stride=1):
        self.output_stride = output_stride
        self.current_stride = current_stride
        self.rate = 1

    def step(self, stride):
        if stride == 1:
            return 1, self.rate, self.rate
        if self.current_stride * stride <= self.output_stride:
            self.current_stride *= stride
            return stride, self.rate, self.rate
        rate_before = self.rate
        self.rate *= stride
        return 1, rate_before, self.rate
