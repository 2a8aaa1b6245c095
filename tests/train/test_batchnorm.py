"""Precise BatchNorm: moving statistics become the exact population statistics of each BN input."""

import numpy as np
import pytest

from medtk.data import load_dataset
from medtk.errors import ModelError
from medtk.train.batchnorm import precise_batchnorm
from medtk.train.model import ModelSpec, build_classifier, training_view
from medtk.train.pipeline import prepare_split
from medtk.train.tfenv import keras


def _norms(model):
    k = keras()
    return [layer for layer in model.layers if isinstance(layer, k.layers.BatchNormalization)]


def _train(model, x, y, epochs: int, batch_size: int = 32):
    k = keras()
    view = training_view(model)
    view.compile(optimizer=k.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    view.fit(x.astype(np.float32), np.eye(2, dtype=np.float32)[y], batch_size=batch_size, epochs=epochs,
             shuffle=True, verbose=0)


@pytest.fixture(scope="module")
def synthetic_32():
    data = load_dataset("synthetic:200")
    split = data.splits["train"]
    return prepare_split(split, 32, 1), split.labels


@pytest.fixture(scope="module")
def trained(synthetic_32):
    """A tiny ResNet50 after a few steps with the backbone's momentum 0.99: stale moving statistics."""
    keras().utils.set_random_seed(0)
    model = build_classifier(ModelSpec(arch="resnet50", input_size=32, channels=1, num_classes=2))
    x, y = synthetic_32
    _train(model, x[:96], y[:96], epochs=1)
    return model


def _features(model):
    """Input -> backbone output: no dropout on the way, so training mode differs only in BatchNorm."""
    k = keras()
    return k.Model(model.input, model.get_layer("conv5_block3_out").output)


def test_inference_matches_training_mode_after_the_pass(trained, synthetic_32):
    """With the whole set as one batch, the population statistics are that batch's: inference == training mode."""
    x = synthetic_32[0][:96].astype(np.float32)
    features = _features(trained)
    reference = features(x, training=True).numpy()
    before = features(x, training=False).numpy()
    scale = np.abs(reference).mean()
    assert np.abs(before - reference).mean() > 0.5 * scale  # stale statistics: inference is another network

    result = precise_batchnorm(trained, x, batch_size=len(x))
    after = features(x, training=False).numpy()
    assert result.layers_updated == len(_norms(trained)) == 53 and result.layers_frozen == 0
    assert (result.images, result.batches) == (96, 1)
    assert np.abs(after - reference).mean() < 1e-3 * scale


def test_moving_statistics_are_the_population_statistics_of_each_bn_input(trained, synthetic_32):
    """Streamed batches of 32 (the last one partial) against numpy over every BN input, upstream in training mode."""
    k = keras()
    x = synthetic_32[0][:88].astype(np.float32)
    batches = [x[i:i + 32] for i in range(0, len(x), 32)]
    result = precise_batchnorm(trained, iter(batches))
    assert (result.images, result.batches) == (88, 3)
    names = ["conv1_bn", "conv3_block2_2_bn"]  # the first (no BN upstream) and a deep one (38 BN layers upstream)
    stats = {name: (trained.get_layer(name).moving_mean.numpy(), trained.get_layer(name).moving_variance.numpy())
             for name in names}
    probe = k.Model(trained.input, [trained.get_layer(name).input for name in names])
    inputs = [np.concatenate(parts).astype(np.float64)
              for parts in zip(*[[t.numpy() for t in probe(b, training=True)] for b in batches])]
    for name, values in zip(names, inputs):
        flat = values.reshape(-1, values.shape[-1])
        mean, variance = stats[name]
        np.testing.assert_allclose(mean, flat.mean(axis=0), rtol=1e-4, atol=1e-5 * np.abs(flat).max())
        np.testing.assert_allclose(variance, flat.var(axis=0), rtol=1e-4, atol=1e-6)


def test_frozen_batchnorm_is_left_alone_and_mobilenet_works(synthetic_32):
    model = build_classifier(ModelSpec(arch="mobilenetv2", input_size=32, channels=1, num_classes=2))
    norms = _norms(model)
    frozen = norms[:10]
    for layer in frozen:
        layer.trainable = False
    before = [layer.moving_mean.numpy().copy() for layer in frozen]
    result = precise_batchnorm(model, synthetic_32[0][:40], batch_size=20)
    assert (result.layers_updated, result.layers_frozen, result.images) == (len(norms) - 10, 10, 40)
    for layer, mean in zip(frozen, before):
        np.testing.assert_array_equal(layer.moving_mean.numpy(), mean)
    assert not np.allclose(norms[-1].moving_mean.numpy(), 0.0)  # updated from its initial zeros


def test_dropout_upstream_of_batchnorm_is_refused_and_nothing_changes():
    k = keras()
    inputs = k.Input((4,))
    hidden = k.layers.Dropout(0.5, name="drop")(k.layers.Dense(3)(inputs))
    model = k.Model(inputs, k.layers.BatchNormalization(name="bn")(hidden))
    with pytest.raises(ModelError, match="Dropout layer 'drop' feeds a BatchNormalization layer"):
        precise_batchnorm(model, np.ones((8, 4), np.float32))
    np.testing.assert_array_equal(model.get_layer("bn").moving_mean.numpy(), 0.0)


@pytest.mark.slow
def test_from_scratch_run_goes_from_chance_to_sound_inference_accuracy():
    """ResNet50 from scratch, 180 synthetic images, 10 epochs, momentum 0.99 (about a minute on one core)."""
    keras().utils.set_random_seed(0)
    data = load_dataset("synthetic:300")
    x, y = prepare_split(data.splits["train"], 64, 1), data.splits["train"].labels
    x_test, y_test = prepare_split(data.splits["test"], 64, 1), data.splits["test"].labels
    model = build_classifier(ModelSpec(arch="resnet50", input_size=64, channels=1, num_classes=2))
    _train(model, x, y, epochs=10)

    def accuracy(images, labels):
        probs, _ = model.predict(images.astype(np.float32), batch_size=64, verbose=0)
        return float(np.mean(probs.argmax(axis=1) == labels))

    stale = accuracy(x_test, y_test)
    assert stale <= 0.6  # inference mode with stale statistics: near chance
    precise_batchnorm(model, x, batch_size=32)
    assert accuracy(x, y) >= 0.85
    # Held-out accuracy after 10 epochs on 180 phantoms whose nodule must be found is generalisation, not
    # BatchNorm (0.58-0.62 here, from 60 images); BatchNorm's part is that it is never below the stale
    # statistics' chance level.
    assert accuracy(x_test, y_test) >= stale


def test_the_pass_before_each_validation_takes_a_new_bounded_subset_of_the_training_images():
    """The final pass uses every training image; the per-epoch one a random EPOCH_BATCHNORM_IMAGES of them."""
    from medtk.train.fit import EPOCH_BATCHNORM_IMAGES, epoch_batchnorm_sample

    images = np.arange(720 * 2, dtype=np.float32).reshape(720, 1, 1, 2)  # image i holds 2i, 2i + 1
    rng = np.random.default_rng(0)
    first, second = epoch_batchnorm_sample(images, rng), epoch_batchnorm_sample(images, rng)
    for sample in (first, second):
        indices = sample[:, 0, 0, 0] / 2
        assert len(sample) == EPOCH_BATCHNORM_IMAGES == len(set(indices)) and set(indices) <= set(range(720))
    assert not np.array_equal(first, second)  # each epoch its own subset
    few = images[:100]
    assert np.array_equal(np.sort(epoch_batchnorm_sample(few, rng), axis=0), few)  # fewer images: all of them
