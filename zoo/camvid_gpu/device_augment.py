"""DeepLab's training augmentation as one jax function, run on the device inside the jitted step.

`train_on_device.py` keeps every decoded frame in device memory and draws each batch here, so
the GPU never waits for a host input pipeline. Same recipe as `deeplab_keras.data.augment`
(numpy + Pillow): random scale (bilinear image, nearest labels), random crop, mean-pixel and
ignore-label padding, left-right flip; it differs in that downscaling does not antialias and a
frame smaller than the crop sits at a random place in it (not at the top left).

Example:

```python
augment = make_augment(batch_size=16, crop_size=(352, 352), scale_range=(0.5, 2.0))
images, labels = jax.jit(augment)(frames_uint8, masks_uint8, jax.random.key(0))
```
"""

IGNORE = 255


def make_augment(batch_size, crop_size, scale_range):
    """A jax function `(images, masks, key) -> (float32 [B, h, w, 3], int32 [B, h, w])`: random
    frame, random scale (bilinear image, nearest labels, pixel centres kept), random crop
    (a frame smaller than the crop sits at a random place, padded with the mean pixel and
    the ignore label), random left-right flip."""
    import jax
    import jax.numpy as jnp

    from deeplab_keras.data.augment import MEAN_PIXEL

    ch, cw = crop_size
    low, high = scale_range
    mean_pixel = jnp.asarray(MEAN_PIXEL, jnp.float32)

    def augment(images, masks, key):
        n, height, width = images.shape[:3]
        k_index, k_scale, k_y, k_x, k_flip = jax.random.split(key, 5)
        index = jax.random.randint(k_index, (batch_size,), 0, n)
        scale = jax.random.uniform(k_scale, (batch_size,), minval=low, maxval=high)
        flip = jax.random.bernoulli(k_flip, 0.5, (batch_size,))

        def offsets(k, scaled, crop):
            lo, hi = jnp.minimum(0.0, scaled - crop), jnp.maximum(0.0, scaled - crop)
            return lo + jax.random.uniform(k, (batch_size,)) * (hi - lo)

        top = offsets(k_y, height * scale, ch)
        left = offsets(k_x, width * scale, cw)
        # Source coordinates of the crop's pixel centres: [B, ch] and [B, cw].
        ys = (top[:, None] + jnp.arange(ch)[None] + 0.5) / scale[:, None] - 0.5
        xs = (left[:, None] + jnp.arange(cw)[None] + 0.5) / scale[:, None] - 0.5
        xs = jnp.where(flip[:, None], xs[:, ::-1], xs)
        inside = (((ys >= -0.5) & (ys <= height - 0.5))[:, :, None]
                  & ((xs >= -0.5) & (xs <= width - 0.5))[:, None, :])
        b = index[:, None, None]

        y0 = jnp.floor(ys)
        x0 = jnp.floor(xs)
        wy = (ys - y0)[:, :, None, None]
        wx = (xs - x0)[:, None, :, None]
        y0i = jnp.clip(y0, 0, height - 1).astype(jnp.int32)
        y1i = jnp.clip(y0 + 1, 0, height - 1).astype(jnp.int32)
        x0i = jnp.clip(x0, 0, width - 1).astype(jnp.int32)
        x1i = jnp.clip(x0 + 1, 0, width - 1).astype(jnp.int32)

        def gather(yi, xi):
            return images[b, yi[:, :, None], xi[:, None, :]].astype(jnp.float32)

        top_row = gather(y0i, x0i) * (1 - wx) + gather(y0i, x1i) * wx
        bottom_row = gather(y1i, x0i) * (1 - wx) + gather(y1i, x1i) * wx
        image = top_row * (1 - wy) + bottom_row * wy
        image = jnp.where(inside[..., None], image, mean_pixel)

        yn = jnp.clip(jnp.round(ys), 0, height - 1).astype(jnp.int32)
        xn = jnp.clip(jnp.round(xs), 0, width - 1).astype(jnp.int32)
        label = masks[b, yn[:, :, None], xn[:, None, :]].astype(jnp.int32)
        label = jnp.where(inside, label, IGNORE)
        return image, label

    return augment
