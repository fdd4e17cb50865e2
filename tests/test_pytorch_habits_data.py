"""tinylesion.utils.data: torch.utils.data's Dataset, DataLoader, samplers and collation."""
import threading
import time
from collections import namedtuple

import numpy as np
import pytest

import tinylesion as tl
from tinylesion.utils.data import (BatchSampler, ConcatDataset, DataLoader, Dataset,
                                   IterableDataset, RandomSampler, SequentialSampler, Subset,
                                   SubsetRandomSampler, TensorDataset, WeightedRandomSampler,
                                   default_collate, default_convert, get_worker_info,
                                   random_split)


class Squares(Dataset):
    """Sample i: a (2, 3) float32 image holding i plus a random draw, and the label i % 3."""

    def __init__(self, n=10, noisy=True):
        self.n, self.noisy = n, noisy

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        noise = tl.rand(1).item() if self.noisy else 0.0
        return np.full((2, 3), i + noise, np.float32), i % 3


def run(loader):
    return [(x.numpy().copy(), y.numpy().copy()) for x, y in loader]


def test_batches_are_tensors_in_dataset_order():
    loader = DataLoader(Squares(10, noisy=False), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [len(y) for _, y in batches] == [4, 4, 2]
    x, y = batches[0]
    assert isinstance(x, tl.Tensor) and x.shape == (4, 2, 3) and x.dtype == np.float32
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2, 0]
    assert x.numpy()[:, 0, 0].tolist() == [0, 1, 2, 3]
    assert len(DataLoader(Squares(10), batch_size=4, drop_last=True)) == 2
    assert [len(y) for _, y in DataLoader(Squares(10), batch_size=4, drop_last=True)] == [4, 4]


def test_shuffle_follows_manual_seed_and_not_num_workers():
    results = []
    for workers in (0, 1, 3):
        tl.manual_seed(5)
        loader = DataLoader(Squares(11), batch_size=3, shuffle=True, num_workers=workers)
        results.append(run(loader) + run(loader))
    for other in results[1:]:
        for (x0, y0), (x1, y1) in zip(results[0], other):
            np.testing.assert_array_equal(x0, x1)
            np.testing.assert_array_equal(y0, y1)
    first, second = results[0][:4], results[0][4:]
    order = np.concatenate([x[:, 0, 0] for x, _ in first]).astype(int)
    assert sorted(order.tolist()) == list(range(11)) and order.tolist() != list(range(11))
    assert not np.array_equal(first[0][0], second[0][0])   # a new order each pass
    # the random draw inside __getitem__ changes with the pass, not only the order
    tl.manual_seed(6)
    other_seed = run(DataLoader(Squares(11), batch_size=3, shuffle=True))
    assert not np.array_equal(other_seed[0][0], results[0][0][0])


def test_generator_fixes_the_order_whatever_the_global_seed():
    orders = []
    for global_seed in (1, 2):
        tl.manual_seed(global_seed)
        g = tl.Generator().manual_seed(42)
        loader = DataLoader(Squares(9, noisy=False), batch_size=9, shuffle=True, generator=g)
        orders.append(next(iter(loader))[0].numpy()[:, 0, 0].tolist())
    assert orders[0] == orders[1]


def test_error_keeps_its_type_and_names_the_index():
    class Broken(Squares):
        def __getitem__(self, i):
            if i == 6:
                raise KeyError("no such record")
            return super().__getitem__(i)

    for workers in (0, 2):
        with pytest.raises(KeyError) as info:
            run(DataLoader(Broken(10), batch_size=2, num_workers=workers))
        assert "dataset[6]" in " ".join(info.value.__notes__)


def _loader_threads():
    return [t for t in threading.enumerate() if t.name.startswith("tinylesion-loader")]


def test_leaving_the_loop_stops_the_threads():
    before = len(_loader_threads())
    for i, _ in enumerate(DataLoader(Squares(200), batch_size=2, num_workers=3)):
        if i == 1:
            assert len(_loader_threads()) > before
            break
    deadline = time.time() + 5
    while len(_loader_threads()) > before and time.time() < deadline:
        time.sleep(0.05)
    assert len(_loader_threads()) == before


def test_prefetch_is_bounded():
    loaded = []

    class Recording(Squares):
        def __getitem__(self, i):
            loaded.append(i)
            return super().__getitem__(i)

    it = iter(DataLoader(Recording(100), batch_size=4, num_workers=2, prefetch_factor=1))
    next(it)
    time.sleep(0.3)
    # the batch held plus prefetch_factor * num_workers = 2 batches ahead: 12 samples at most
    assert 8 <= max(loaded) + 1 <= 12
    it.close()


def test_worker_init_fn_and_worker_info():
    seen, infos = [], []

    class Asking(Squares):
        def __getitem__(self, i):
            infos.append(get_worker_info())
            return super().__getitem__(i)

    run(DataLoader(Asking(8), batch_size=2, num_workers=2, worker_init_fn=seen.append))
    assert sorted(seen) == [0, 1]
    assert all(info is not None and info.num_workers == 2 and info.id in (0, 1)
               for info in infos)
    infos.clear()
    run(DataLoader(Asking(4), batch_size=2))
    assert infos == [None] * 4 and get_worker_info() is None


def test_batch_sampler_of_varying_sizes_and_sampler():
    class Uneven:
        def __iter__(self):
            return iter([[3, 1], [0, 2, 4, 5], [9]])

        def __len__(self):
            return 3

    loader = DataLoader(Squares(10, noisy=False), batch_sampler=Uneven(), num_workers=2)
    got = [x.numpy()[:, 0, 0].astype(int).tolist() for x, _ in loader]
    assert got == [[3, 1], [0, 2, 4, 5], [9]] and len(loader) == 3
    loader = DataLoader(Squares(10, noisy=False), batch_size=3, sampler=[9, 8, 7, 0])
    assert [x.numpy()[:, 0, 0].astype(int).tolist() for x, _ in loader] == [[9, 8, 7], [0]]


def test_option_conflicts_are_refused_as_torch():
    ds = Squares(4)
    for kwargs in ({"sampler": [0], "shuffle": True},
                   {"batch_sampler": [[0]], "batch_size": 2},
                   {"batch_sampler": [[0]], "drop_last": True},
                   {"batch_size": None, "drop_last": True},
                   {"prefetch_factor": 2},
                   {"num_workers": -1}):
        with pytest.raises(ValueError):
            DataLoader(ds, **kwargs)
    loader = DataLoader(ds, batch_size=2, num_workers=1, pin_memory=True,
                        persistent_workers=True)
    assert len(run(loader)) == 2


def test_batch_size_none_gives_samples_converted():
    samples = list(DataLoader(Squares(3, noisy=False), batch_size=None))
    assert len(samples) == 3
    image, label = samples[2]
    assert isinstance(image, tl.Tensor) and image.shape == (2, 3) and label == 2


def test_default_collate_structures():
    Point = namedtuple("Point", "x y")
    batch = [{"img": np.ones((2, 2), np.uint8), "label": 1, "w": 0.5, "name": "a",
              "pair": (tl.ones(3), Point(1, 2.0))},
             {"img": np.zeros((2, 2), np.uint8), "label": 0, "w": 1.5, "name": "b",
              "pair": (tl.zeros(3), Point(3, 4.0))}]
    out = default_collate(batch)
    assert out["img"].shape == (2, 2, 2) and out["img"].dtype == np.uint8
    assert out["label"].dtype == np.int64 and out["label"].tolist() == [1, 0]
    assert out["w"].dtype == np.float64 and out["name"] == ["a", "b"]
    assert isinstance(out["pair"], list) and out["pair"][0].shape == (2, 3)
    assert isinstance(out["pair"][1], Point) and out["pair"][1].x.tolist() == [1, 3]
    assert default_collate([True, False]).dtype == np.bool_
    assert default_collate([np.float32(1), np.float32(2)]).dtype == np.float32
    with pytest.raises(RuntimeError, match=r"\(2,\) at entry 0 and \(3,\) at entry 1"):
        default_collate([np.ones(2), np.ones(3)])
    from PIL import Image
    with pytest.raises(TypeError, match="ToTensor"):
        default_collate([Image.new("RGB", (2, 2))])
    converted = default_convert({"a": np.ones(2), "b": [np.zeros(1), 3]})
    assert isinstance(converted["a"], tl.Tensor) and converted["b"][1] == 3


def test_tensor_dataset_subset_concat():
    x, y = tl.randn(7, 3), tl.arange(7)
    ds = TensorDataset(x, y)
    assert len(ds) == 7 and ds[2][1].item() == 2
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(x, tl.arange(6))
    labels = [b[1].tolist() for b in DataLoader(ds, batch_size=3)]
    assert labels == [[0, 1, 2], [3, 4, 5], [6]]
    sub = Subset(ds, [6, 0])
    assert len(sub) == 2 and sub[0][1].item() == 6
    both = ConcatDataset([Squares(2, noisy=False), Squares(3, noisy=False)])
    assert len(both) == 5 and both[3][0][0, 0] == 1 and both[-1][0][0, 0] == 2
    assert len(Squares(2) + Squares(4)) == 6


def test_random_split_counts_and_fractions():
    a, b = random_split(range(10), [7, 3], generator=tl.Generator().manual_seed(0))
    assert sorted(list(a) + list(b)) == list(range(10))
    parts = random_split(range(5), [0.5, 0.5])
    assert [len(p) for p in parts] == [3, 2]    # remainder to the first split, as torch
    assert [len(p) for p in random_split(range(10), [0.34, 0.33, 0.33])] == [4, 3, 3]
    with pytest.raises(ValueError, match="does not equal"):
        random_split(range(10), [3, 3])
    g1, g2 = tl.Generator().manual_seed(3), tl.Generator().manual_seed(3)
    assert list(random_split(range(10), [5, 5], g1)[0]) == \
        list(random_split(range(10), [5, 5], g2)[0])


def test_samplers():
    tl.manual_seed(0)
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    perm = list(RandomSampler(range(6)))
    assert sorted(perm) == list(range(6))
    drawn = list(RandomSampler(range(3), replacement=True, num_samples=50))
    assert len(drawn) == 50 and set(drawn) <= {0, 1, 2}
    longer = list(RandomSampler(range(3), num_samples=7))
    assert len(longer) == 7 and sorted(longer[:6]) == [0, 0, 1, 1, 2, 2]
    assert sorted(SubsetRandomSampler([5, 9, 11])) == [5, 9, 11]
    w = list(WeightedRandomSampler([0.0, 1.0, 3.0], 4000))
    counts = np.bincount(w, minlength=3)
    assert counts[0] == 0 and abs(counts[2] / counts[1] - 3) < 0.4
    no_repeat = list(WeightedRandomSampler([1, 1, 1, 1], 4, replacement=False))
    assert sorted(no_repeat) == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        WeightedRandomSampler([1, 0], 2, replacement=False)
    assert list(BatchSampler(range(7), 3, drop_last=False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(BatchSampler(range(7), 3, drop_last=True)) == 2
    with pytest.raises(ValueError):
        BatchSampler(range(7), 0, drop_last=False)


def test_iterable_dataset():
    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(7))

    batches = [b.tolist() for b in DataLoader(Stream(), batch_size=3, num_workers=2)]
    assert batches == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.tolist() for b in DataLoader(Stream(), batch_size=3, drop_last=True)] == \
        [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(ValueError):
        DataLoader(Stream(), shuffle=True)
