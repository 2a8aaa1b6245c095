"""`synthetic[:N]`: chest-like phantoms generated here, for demos and tests that need no download.

Each 64x64 grayscale image has a smooth background, a body ellipse, a heart shadow and two dark
lung fields (their size and place vary, apices reach the top of the image) with rib-like stripes
and noise. Class "lesion" adds one soft Gaussian nodule (sometimes two) anywhere in a lung, its
periphery and apex included, of several sizes (sigma 2-5 px) and contrasts (some faint), and keeps
its mask so explanations can be scored (`medtk.train.explain.scoring`). Both classes get the same distractors
at the same rates: bright spots outside the lungs, ring-shaped ECG electrodes anywhere (inside the
lungs too) and a bright tube crossing the image, so neither "any bright spot", "something in the
lung" nor a whole-image statistic separates the classes: the model has to find the nodule, and a
CAM that points anywhere else is wrong. The content depends only on N (a fixed generator seed):
`synthetic:600` is the same data in every run, like a file; its split (60/20/20, stratified) is
part of the source.
"""

from __future__ import annotations

import numpy as np

from medtk.data.catalog import Catalog
from medtk.data.splitting import split_indices
from medtk.errors import DataError
from medtk.runtime.imaging import decode_image

SIZE = 64
DEFAULT_COUNT = 600
MIN_COUNT, MAX_COUNT = 20, 100_000
GENERATOR_SEED = 1729
# Difficulty knobs (see tests/data/test_synthetic.py and benchmarks/RESULTS.md, "Localization").
LESION_CONTRAST = (0.3, 0.6)  # added to the 0..1 image at the nodule centre
LESION_SIGMA_PIXELS = (2.0, 5.0)  # drawn log-uniformly: small nodules are as common as large ones
SECOND_LESION_RATE = 0.15
ELECTRODES_PER_IMAGE = (0, 2)  # ring-shaped, anywhere: a bright local feature that is not a finding
TUBE_RATE = 0.35
CLASS_NAMES = ("normal", "lesion")


def load_synthetic(spec: str | None = None) -> Catalog:
    """`spec` is the text after `synthetic:` (the number of images); None for plain `synthetic`."""
    count = _parse_count(spec)
    rng = np.random.default_rng(GENERATOR_SEED)
    labels = np.arange(count, dtype=np.int64) % 2
    images = np.empty((count, SIZE, SIZE), dtype=np.uint8)
    masks = np.zeros((count, SIZE, SIZE), dtype=bool)
    for i in range(count):
        images[i], masks[i] = phantom(rng, lesion=bool(labels[i]))
    parts = split_indices(labels, seed=GENERATOR_SEED, val_fraction=0.2, test_fraction=0.2)
    given = np.empty(count, dtype=np.int64)
    for k, indices in enumerate(parts.values()):
        given[indices] = k
    return Catalog(
        source=f"synthetic:{count}",
        class_names=CLASS_NAMES,
        finding="lesion",
        ids=[f"synthetic/{i:05d}" for i in range(count)],
        labels=labels,
        load=lambda index: decode_image(images[index]),
        given_split=given,
        masks=lambda index: masks[index],
        shapes=[f"{SIZE}x{SIZE}"] * count,
    )


def phantom(rng: np.random.Generator, *, lesion: bool) -> tuple[np.ndarray, np.ndarray]:
    """One uint8 image and its lesion mask (all False for a normal image)."""
    y, x = np.mgrid[-1 : 1 : SIZE * 1j, -1 : 1 : SIZE * 1j]
    image = 0.08 + 0.06 * rng.uniform(-1, 1) * x + 0.06 * rng.uniform(-1, 1) * y  # smooth background
    image += 0.05 * _gauss(x, y, rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.4, 0.9))
    body = _ellipse(x, y, rng.normal(0, 0.03), rng.normal(0.05, 0.03), rng.uniform(0.8, 0.92), rng.uniform(0.88, 0.97))
    image += body * rng.uniform(0.45, 0.6)
    image += 0.07 * _ellipse(x, y, rng.normal(0.1, 0.03), rng.normal(0.28, 0.04), 0.3, 0.24)  # heart shadow
    lungs = np.zeros_like(image)
    for side in (-1, 1):
        cx, cy = side * rng.uniform(0.3, 0.45), rng.uniform(-0.2, 0.02)
        lungs = np.maximum(lungs, _ellipse(x, y, cx, cy, rng.uniform(0.2, 0.3), rng.uniform(0.5, 0.66)))
    ribs = 0.03 * np.sin(y * rng.uniform(18, 24) + rng.uniform(0, 2 * np.pi))
    image -= lungs * (rng.uniform(0.25, 0.35) - ribs)
    for _ in range(rng.integers(0, 3)):  # bright spots outside the lungs
        cx, cy = rng.uniform(-0.85, 0.85), rng.uniform(-0.85, 0.85)
        if lungs[_index(cy), _index(cx)] < 0.5:
            image += rng.uniform(0.05, 0.25) * _gauss(x, y, cx, cy, rng.uniform(0.04, 0.09))
    for _ in range(rng.integers(ELECTRODES_PER_IMAGE[0], ELECTRODES_PER_IMAGE[1] + 1)):
        image += rng.uniform(0.15, 0.35) * _ring(x, y, rng.uniform(-0.8, 0.8), rng.uniform(-0.8, 0.8))
    if rng.uniform() < TUBE_RATE:
        image += rng.uniform(0.12, 0.3) * _tube(x, y, rng)
    mask = np.zeros(image.shape, dtype=bool)
    if lesion:
        inside = np.argwhere(lungs >= 0.5)  # the whole lung, its soft edge and apex included
        for _ in range(2 if rng.uniform() < SECOND_LESION_RATE else 1):
            row, col = inside[rng.integers(len(inside))]
            sigma = np.exp(rng.uniform(*np.log(LESION_SIGMA_PIXELS))) * 2 / (SIZE - 1)
            blob = _gauss(x, y, x[row, col], y[row, col], sigma)
            image += rng.uniform(*LESION_CONTRAST) * blob
            mask |= blob > 0.5
    image += rng.normal(0, rng.uniform(0.015, 0.035), image.shape)
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8), mask


def _ring(x, y, cx, cy) -> np.ndarray:
    """An ECG electrode: a sharp bright ring 2-3 px wide around a dim centre, 6-9 px across."""
    r = np.sqrt((x - cx) ** 2 + (y - cy) ** 2) * (SIZE - 1) / 2
    outer = 3.0 + 1.5 * abs(np.sin(cx * 7.0 + cy * 3.0))
    return np.clip(outer + 0.5 - r, 0.0, 1.0) * (0.35 + 0.65 * np.clip(r - 1.2, 0.0, 1.0))


def _tube(x, y, rng: np.random.Generator) -> np.ndarray:
    """A catheter: a thin bright curve from the top edge down through the chest."""
    x0, slope, bend = rng.uniform(-0.5, 0.5), rng.uniform(-0.4, 0.4), rng.uniform(-0.5, 0.5)
    path = x0 + slope * y + bend * y**2
    distance = np.abs(x - path) * (SIZE - 1) / 2
    end = rng.uniform(0.0, 0.8)
    return np.clip(1.3 - distance, 0.0, 1.0) * (y <= end)


def _ellipse(x, y, cx, cy, ax, ay) -> np.ndarray:
    """1 inside, 0 outside, with a soft 2-pixel edge."""
    r = np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2)
    return np.clip((1.0 - r) * min(ax, ay) * SIZE / 4, 0.0, 1.0)


def _gauss(x, y, cx, cy, sigma) -> np.ndarray:
    return np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))


def _index(value: float) -> int:
    return int(round((value + 1) / 2 * (SIZE - 1)))


def _parse_count(spec: str | None) -> int:
    if spec is None:
        return DEFAULT_COUNT
    if not spec.isdigit() or not MIN_COUNT <= int(spec) <= MAX_COUNT:
        raise DataError(f"synthetic:{spec}: expected an image count N from {MIN_COUNT} to {MAX_COUNT}, "
                        f"as in synthetic:{DEFAULT_COUNT}")
    return int(spec)
