import numpy as np

from medtk.config import AugmentConfig
from medtk.data.base import Split
from medtk.train.pipeline import augmentation, make_dataset, prepare_split


def _split(images):
    return Split(ids=[f"x[{i}]" for i in range(len(images))], labels=np.zeros(len(images), np.int64),
                 load=lambda i: images[i])


def test_prepare_split_uses_the_shared_preprocessing():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 30), dtype=np.uint8) for _ in range(5)]
    images.append(rng.integers(0, 65535, (20, 20, 3), dtype=np.uint16))
    prepared = prepare_split(_split(images), 32, 1)
    assert prepared.shape == (6, 32, 32, 1) and prepared.dtype == np.uint8
    from medtk.runtime.imaging import prepare_input

    np.testing.assert_array_equal(prepared[5], prepare_input(images[5], 32, 1))


def test_dataset_batches_one_hot_float_pixels():
    images = np.arange(10 * 8 * 8, dtype=np.uint8).reshape(10, 8, 8, 1)
    labels = np.array([0, 1] * 5)
    x, y = next(iter(make_dataset(images, labels, 2, batch_size=4, training=False)))
    assert x.shape == (4, 8, 8, 1) and x.dtype.name == "float32" and y.shape == (4, 2)
    np.testing.assert_array_equal(x.numpy(), images[:4].astype(np.float32))
    np.testing.assert_array_equal(y.numpy().argmax(1), labels[:4])


def test_augmentation_changes_pixels_and_switches_off():
    images = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 1), dtype=np.uint8)
    x, _ = next(iter(make_dataset(images, np.zeros(8, int), 2, 8, training=True, augment=AugmentConfig(), seed=1)))
    assert x.shape == (8, 16, 16, 1)
    assert float(x.numpy().min()) >= 0 and float(x.numpy().max()) <= 255  # nearest fill keeps the range
    assert not np.array_equal(np.sort(x.numpy().ravel()), np.sort(images.astype(np.float32).ravel()))
    assert augmentation(AugmentConfig(enabled=False)) is None
    names = [l.name for l in augmentation(AugmentConfig(horizontal_flip=False, vertical_flip=False)).layers]
    assert not any("flip" in name for name in names)
