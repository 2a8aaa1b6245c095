"""`cell_geometry`: where a feature map's cells sit on the input, from the Keras graph."""

from __future__ import annotations

import numpy as np
import pytest

from medtk.runtime.geometry import CellGeometry
from medtk.train.cam_geometry import cam_geometry, cell_geometry
from medtk.train.model import ModelSpec, build_classifier
from medtk.train.tfenv import keras, tensorflow


@pytest.mark.parametrize(("arch", "stride", "origin"), [
    ("resnet50", 32, 0.0), ("resnet50", 16, 0.0),  # zero padding before valid strided convolutions and pools
    ("mobilenetv2", 32, 31.0), ("mobilenetv2", 16, 15.0),  # "correct_pad" pads after: centre 2 u + 1 per step
])
def test_backbones(arch, stride, origin):
    model = build_classifier(ModelSpec(arch=arch, input_size=64, channels=1, num_classes=2, output_stride=stride))
    assert cam_geometry(model) == CellGeometry(input_size=64, stride=(stride, stride), origin=(origin, origin))


def test_resnet50_conv4_shares_the_stride16_grid():
    model = build_classifier(ModelSpec(arch="resnet50", input_size=64, channels=1, num_classes=2))
    assert cell_geometry(model, "conv4_block6_out") == CellGeometry(64, (16.0, 16.0), (0.0, 0.0))


def test_matches_the_receptive_field_centre_of_a_linear_network():
    """All-ones kernels and no nonlinearity: an interior cell's input gradient is symmetric about the
    centre of its receptive field, so its centroid is where the geometry must put the cell."""
    k, tf = keras(), tensorflow()
    layers = k.layers
    ones = k.initializers.Ones()
    pixels = k.Input((96, 96, 1))
    x = layers.ZeroPadding2D(((1, 2), (2, 1)))(pixels)  # asymmetric, different per axis
    x = layers.Conv2D(1, 3, strides=2, padding="valid", use_bias=False, kernel_initializer=ones)(x)
    x = layers.Conv2D(1, 4, strides=2, padding="same", use_bias=False, kernel_initializer=ones)(x)  # even kernel
    skip = layers.AveragePooling2D(3, strides=1, padding="same")(x)  # a second path into the addition
    x = layers.DepthwiseConv2D(3, dilation_rate=2, padding="same", use_bias=False, depthwise_initializer=ones)(x)
    x = layers.Add()([x, skip])
    x = layers.Conv2D(1, 3, strides=2, padding="same", use_bias=False, kernel_initializer=ones, name="cells")(x)
    model = k.Model(pixels, x)
    geometry = cell_geometry(model, "cells")
    assert geometry is not None and geometry.stride == (8.0, 8.0)
    image = tf.Variable(np.ones((1, 96, 96, 1), np.float32))
    grid = model.output_shape[1]
    for i, j in ((grid // 2, grid // 2), (grid // 2 - 1, grid // 2 + 1)):
        with tf.GradientTape() as tape:
            value = model(image)[0, i, j, 0]
        weight = tape.gradient(value, image).numpy()[0, :, :, 0]
        rows, columns = np.mgrid[:96, :96]
        centre = ((weight * rows).sum() / weight.sum(), (weight * columns).sum() / weight.sum())
        expected = (geometry.origin[0] + 8 * i, geometry.origin[1] + 8 * j)
        np.testing.assert_allclose(centre, expected, atol=1e-4)


def test_unknown_layers_make_the_geometry_unknown():
    k = keras()
    pixels = k.Input((32, 32, 1))
    x = k.layers.Conv2D(2, 3, strides=2, padding="same")(pixels)
    x = k.layers.UpSampling2D(2, name="up")(x)  # changes the grid in a way the walk does not model
    model = k.Model(pixels, x)
    assert cell_geometry(model, "up") is None
