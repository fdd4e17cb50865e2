"""The data API given values that would quietly give NaN batches: one clear error instead."""
import numpy as np
import pytest

from tinylesion import data


class _Batches:
    """A stand-in Loader: one uint8 batch."""

    def __len__(self):
        return 1

    def __iter__(self):
        yield np.full((2, 3, 4, 4), 128, np.uint8), np.zeros(2, np.int64)


@pytest.mark.parametrize("mean, std, words", [
    ((0.5, 0.5, float("nan")), (0.2, 0.2, 0.2), "mean must be finite"),
    ((0.5, 0.5, 0.5), (0.2, 0.0, 0.2), "std must be finite and > 0"),
    ((0.5, 0.5, 0.5), (0.2, float("inf"), 0.2), "std must be finite and > 0"),
    ((0.5, 0.5), (0.2, 0.2, 0.2), "mean and std need one value per channel"),
])
def test_device_loader_checks_mean_and_std_when_made(mean, std, words):
    with pytest.raises(ValueError, match=f"DeviceLoader: {words}"):
        data.DeviceLoader(_Batches(), mean=mean, std=std)


def test_normalize_refuses_a_nan_mean_and_an_infinite_std():
    batch = np.zeros((1, 3, 2, 2), np.uint8)
    with pytest.raises(ValueError, match="normalize: mean must be finite"):
        data.normalize(batch, (0.5, np.nan, 0.5), (1, 1, 1))
    with pytest.raises(ValueError, match="normalize: std must be finite and > 0"):
        data.normalize(batch, (0.5, 0.5, 0.5), (1, np.inf, 1))
    x, _ = next(iter(data.DeviceLoader(_Batches(), mean=(0.5,) * 3, std=(0.5,) * 3)))
    np.testing.assert_allclose(np.asarray(x.array if hasattr(x, "array") else x),
                               (128 / 255 - 0.5) / 0.5, atol=1e-6)


@pytest.mark.parametrize("dataset", [[], [(1, 2)], None])
def test_loader_and_channel_stats_name_a_dataset_that_is_not_an_image_dataset(dataset):
    from tinylesion.data import Loader
    from tinylesion.data.transforms import channel_stats
    with pytest.raises(TypeError, match="^Loader: the dataset must be one of tinylesion.data"):
        Loader(dataset)
    with pytest.raises(TypeError, match="^Loader: the dataset must be one of tinylesion.data"):
        channel_stats(dataset)
