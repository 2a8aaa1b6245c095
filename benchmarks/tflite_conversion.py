"""How long one `.tflite` conversion takes: TFLite's `from_keras_model` (medtk's path before) against the
lean SavedModel `compress/convert.py` writes now (the variables and one serving function), and whether
both give the same model.

    nice -n 5 .venv/bin/python benchmarks/tflite_conversion.py [--size 224] [--channels 3] [--repeats 3]

ResNet50 as `medtk train` builds it (random weights: conversion time does not depend on them), converted
to float32 and dynamic range by both routes; prints wall seconds per conversion (median, min-max over
repeats), the largest output difference on one random image, and the CPU flags.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def keras_route(model, converter: str) -> bytes:
    """The route before: TFLiteConverter.from_keras_model, which saves the whole tf-keras object graph."""
    from medtk.train.tfenv import tensorflow

    tf = tensorflow()
    tflite = tf.lite.TFLiteConverter.from_keras_model(model)
    tflite.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if converter == "dynamic":
        tflite.optimizations = [tf.lite.Optimize.DEFAULT]
    return tflite.convert()


def outputs(model: bytes, image: np.ndarray) -> dict[str, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=model).get_signature_runner()(pixels=image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from serve_throughput import cpu_flags

    from medtk.compress.convert import convert
    from medtk.train.model import ModelSpec, build_classifier

    model = build_classifier(ModelSpec(arch="resnet50", input_size=args.size, channels=args.channels,
                                       num_classes=2, weights="none"))
    image = np.random.default_rng(0).integers(0, 256, (1, args.size, args.size, args.channels)).astype(np.float32)
    routes = {"from_keras_model": lambda name: keras_route(model, name), "lean SavedModel": lambda name: convert(model, name)}
    print(f"ResNet50 {args.size} px x {args.channels}; CPU flags: {cpu_flags()}; {args.repeats} repeats\n")
    print("| variant | route | wall s median (min-max) | max abs output difference vs from_keras_model |")
    print("|---|---|---:|---:|")
    for name in ("float32", "dynamic"):
        reference = None
        for route, make in routes.items():
            seconds, result = [], b""
            for _ in range(args.repeats):
                started = time.perf_counter()
                result = make(name)
                seconds.append(time.perf_counter() - started)
            got = outputs(result, image)
            reference = reference or got
            difference = max(float(np.abs(got[key] - reference[key]).max()) for key in got)
            print(f"| {name} | {route} | {statistics.median(seconds):.1f} ({min(seconds):.1f}-{max(seconds):.1f}) "
                  f"| {difference:.2g} |")


if __name__ == "__main__":
    main()
