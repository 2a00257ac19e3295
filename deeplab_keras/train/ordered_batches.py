"""`OrderedBatches`: a `PyDataset` whose batches arrive strictly in index order across Keras
epochs, prefetched by worker threads or processes (the trainer's resumable stream needs it)."""

import keras

_WORKER_DATASET = None


def _set_worker_dataset(dataset):
    global _WORKER_DATASET
    _WORKER_DATASET = dataset


def _worker_getitem(index):
    return _WORKER_DATASET[index]


class OrderedBatches(keras.utils.PyDataset):
    """A `PyDataset` served strictly in index order, prefetched by the wrapped one's workers.

    Keras 3.15 keeps one iterator across epochs when `steps_per_epoch` is given, but a
    `PyDataset` with `workers > 1` (or multiprocessing) goes through an enqueuer that is
    stopped and restarted at every epoch end and then restarts from batch 0 (measured: 40
    steps in epochs of 5 gave batches 0..15, 0..10, 0..10, 0, 1). This wrapper looks like a
    single-worker dataset to Keras (whose index-based iterator survives epoch ends) and runs
    the wrapped dataset's `__getitem__` ahead in a thread pool (a process pool with
    `use_multiprocessing=True`), `max_queue_size` batches deep. The wrapped dataset's
    `on_epoch_begin/on_epoch_end` are not called: the trainer's epochs are checkpoint
    intervals, not passes over the data.

    Example:

    ```python
    batches = OrderedBatches(SegmentationPyDataset(..., workers=4))
    model.fit(batches, epochs=8, steps_per_epoch=5, shuffle=False)
    ```
    """

    def __init__(self, dataset):
        super().__init__(workers=1, use_multiprocessing=False)
        self.dataset = dataset
        self.num_workers = max(1, int(getattr(dataset, "workers", 1) or 1))
        self.prefetch = max(1, int(getattr(dataset, "max_queue_size", 10) or 10))
        self._multiprocessing = bool(getattr(dataset, "use_multiprocessing", False))
        self._pool = None
        self._futures = {}

    def __len__(self):
        return len(self.dataset)

    @property
    def num_batches(self):
        return self.dataset.num_batches

    def _executor(self):
        if self._pool is None:
            import concurrent.futures

            if self._multiprocessing:
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    self.num_workers, initializer=_set_worker_dataset,
                    initargs=(self.dataset,))
            else:
                self._pool = concurrent.futures.ThreadPoolExecutor(self.num_workers)
        return self._pool

    def _submit(self, index):
        if self._multiprocessing:
            return self._executor().submit(_worker_getitem, index)
        return self._executor().submit(self.dataset.__getitem__, index)

    def __getitem__(self, index):
        if self.num_workers == 1 and not self._multiprocessing:
            return self.dataset[index]
        total = self.num_batches
        for ahead in range(index, index + self.prefetch + 1):
            if (total is None or ahead < total) and ahead not in self._futures:
                self._futures[ahead] = self._submit(ahead)
        for old in [i for i in self._futures if i < index]:
            self._futures.pop(old).cancel()
        return self._futures.pop(index).result()

    def close(self):
        """Stops the prefetch pool."""
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass


__all__ = ["OrderedBatches"]
