"""Training throughput (issue 2): `medtk train` against the classic Keras tutorial pipeline, side by side.

    python benchmarks/train_throughput.py [--images 640] [--epochs 2] [--medtk-args "..."]

Both train ResNet50 (frozen backbone) + global average pooling + Dense softmax at 224x224, batch 32,
Adam 1e-4, categorical cross-entropy, with the tutorial's augmentation (rotation 20, shifts 0.2,
horizontal and vertical flips, nearest fill) on the same PNG files written from PneumoniaMNIST.
The tutorial is reproduced as printed except two fixes needed on TF 2.21: `Adam(learning_rate=...)`
instead of `lr=`, and `class_mode="categorical"` to match its 2-way softmax. ImageNet weights cannot be
downloaded here; both start from the same random backbone weights (the compute is the same).
Throughput = training images / training seconds of the last epoch (validation excluded); medtk's
one-off decode pass is reported separately.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache" / "throughput"

TUTORIAL = r'''
import os, sys, time, json
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf
from tf_keras.preprocessing.image import ImageDataGenerator
from tf_keras.applications import ResNet50
from tf_keras.layers import GlobalAveragePooling2D, Dense
from tf_keras.models import Model
from tf_keras.optimizers import Adam
from tf_keras.callbacks import Callback

train_dir, weights, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
train_datagen = ImageDataGenerator(rescale=1./255, rotation_range=20, width_shift_range=0.2,
                                   height_shift_range=0.2, horizontal_flip=True, vertical_flip=True,
                                   fill_mode="nearest")
train_generator = train_datagen.flow_from_directory(train_dir, target_size=(224, 224), batch_size=32,
                                                    class_mode="categorical")
base_model = ResNet50(weights=None, include_top=False, input_shape=(224, 224, 3))
base_model.load_weights(weights)
for layer in base_model.layers:
    layer.trainable = False
x = GlobalAveragePooling2D()(base_model.output)
predictions = Dense(2, activation="softmax")(x)
model = Model(inputs=base_model.input, outputs=predictions)
model.compile(optimizer=Adam(learning_rate=1e-4), loss="categorical_crossentropy", metrics=["accuracy"])

class Timer(Callback):
    seconds = []
    def on_epoch_begin(self, epoch, logs=None): self.t = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None): Timer.seconds.append(time.perf_counter() - self.t)

model.fit(train_generator, epochs=epochs, callbacks=[Timer()], verbose=2)
print("RESULT " + json.dumps({"images": train_generator.samples, "epoch_seconds": Timer.seconds}))
'''


def write_pngs(npz: Path, folder: Path, per_split: dict[str, int]) -> None:
    import cv2

    data = np.load(npz)
    names = ["normal", "pneumonia"]
    for split, count in per_split.items():
        images, labels = data[f"{split}_images"][:count], data[f"{split}_labels"][:count, 0]
        for index, (image, label) in enumerate(zip(images, labels)):
            target = folder / split / names[label]
            target.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(target / f"{index:05d}.png"), image)


def random_backbone_weights(path: Path) -> None:
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    from medtk.train.tfenv import keras

    keras().utils.set_random_seed(0)
    keras().applications.ResNet50(include_top=False, weights=None, input_shape=(224, 224, 3)).save_weights(path)


def run_tutorial(folder: Path, weights: Path, epochs: int) -> dict:
    out = subprocess.run([sys.executable, "-c", TUTORIAL, str(folder / "train"), str(weights), str(epochs)],
                         capture_output=True, text=True, check=True)
    result = json.loads(next(l for l in out.stdout.splitlines() if l.startswith("RESULT "))[7:])
    return {"images_per_second": result["images"] / result["epoch_seconds"][-1], **result}


def run_medtk(folder: Path, weights: Path, epochs: int, extra: list[str]) -> dict:
    run = CACHE / "medtk-run"
    shutil.rmtree(run, ignore_errors=True)
    command = [sys.executable, "-m", "medtk", "train", "--data", str(folder), "--out", str(run),
               "--input-size", "224", "--batch-size", "32", "--weights", str(weights), "--head-epochs", str(epochs),
               "--epochs", "0", "--lr", "1e-4", "--class-weights", "none", *extra]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    with open(run / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    images = sum(1 for _ in (folder / "train").rglob("*.png"))
    seconds = [float(r["train_seconds"]) for r in rows]
    return {"images_per_second": images / seconds[-1], "images": images, "epoch_seconds": seconds,
            "wall_seconds_including_decode_and_eval": wall, "command": " ".join(command[1:])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "pneumoniamnist.npz"))
    parser.add_argument("--images", type=int, default=640)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--medtk-args", default="", help="extra `medtk train` flags, e.g. '--mixed-precision bfloat16'")
    args = parser.parse_args()
    folder = CACHE / f"png-{args.images}"
    if not folder.is_dir():
        write_pngs(Path(args.data), folder, {"train": args.images, "val": 64, "test": 64})
    weights = CACHE / "resnet50_random_notop.h5"
    if not weights.is_file():
        random_backbone_weights(weights)
    tutorial = run_tutorial(folder, weights, args.epochs)
    medtk = run_medtk(folder, weights, args.epochs, args.medtk_args.split())
    print(json.dumps({"tutorial": tutorial, "medtk": medtk,
                      "speedup": medtk["images_per_second"] / tutorial["images_per_second"]}, indent=1))


if __name__ == "__main__":
    main()
