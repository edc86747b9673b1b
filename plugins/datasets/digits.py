from __future__ import annotations

import numpy as np

from clustergrid import Dataset


class Digits(Dataset):
    """scikit-learn's 1,797 handwritten digits (8x8, 10 classes), bundled offline."""

    name = "digits"

    def __init__(self, n_samples: int | None = None):
        self.n_samples = n_samples

    def _data(self):
        if not hasattr(self, "_bunch"):
            from sklearn.datasets import load_digits

            bunch = load_digits()
            stop = self.n_samples if self.n_samples is not None else len(bunch.target)
            if not 1 <= stop <= len(bunch.target):
                raise ValueError(f"n_samples must be between 1 and {len(bunch.target)}")
            self._bunch = (bunch.images[:stop].astype(np.float32), bunch.target[:stop])
        return self._bunch

    def __len__(self) -> int:
        return len(self._data()[1])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, 8, 8)

    def read(self, start: int, stop: int) -> np.ndarray:
        return self._data()[0][start:stop, None, :, :]

    def labels(self) -> np.ndarray:
        return self._data()[1].astype(np.int64)

    def class_names(self) -> list[str]:
        return [str(digit) for digit in range(10)]

    def fingerprint(self) -> str:
        import sklearn

        return f"sklearn-digits:{sklearn.__version__}:{self.n_samples}"
