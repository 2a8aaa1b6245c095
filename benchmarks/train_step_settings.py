"""Training-step throughput of the demo's model under TensorFlow's CPU settings (issue 25's candidates).

    .venv/bin/python benchmarks/train_step_settings.py [--settings float32,xla,inter1,bfloat16] [--rounds 3] [--steps 15]

Each setting runs in its own process (TensorFlow's thread pools and the Keras dtype policy are fixed once
the runtime starts): the demo's model (`medtk.pipeline.DEMO`: ResNet50 from scratch, 96 px, 1 channel, output
stride 16, batch 16, Adam) is compiled as `medtk train` compiles it, fitted for 5 steps to trace and warm up,
then timed over `--steps` steps `--rounds` times on random images (the arithmetic does not depend on the pixel
values; augmentation and the input pipeline are left out, they are timed by benchmarks/train_phases.py).
Settings: `float32` (medtk's CPU default), `xla` (jit_compile, `--xla on`), `inter1` (one inter-op thread),
`bfloat16` (Keras' mixed_bfloat16 policy, `--mixed-precision bfloat16`). Prints the median and range of images/s
over the rounds and the median images per CPU-second, with the CPU's flags: compare figures only from the same CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

SETTINGS = ("float32", "xla", "inter1", "bfloat16")


def measure(setting: str, rounds: int, steps: int) -> dict:
    """Runs in the child process: the images/s of each round under `setting`."""
    import time

    import numpy as np

    from medtk.pipeline import DEMO
    from medtk.train.model import ModelSpec, build_classifier, training_view
    from medtk.train.tfenv import keras, tensorflow

    tf, k = tensorflow(), keras()
    if setting == "inter1":
        tf.config.threading.set_inter_op_parallelism_threads(1)
    if setting == "bfloat16":
        k.mixed_precision.set_global_policy("mixed_bfloat16")
    spec = ModelSpec(arch=DEMO.arch, input_size=DEMO.input_size, channels=1, weights="none",
                     output_stride=DEMO.output_stride)
    view = training_view(build_classifier(spec))
    view.compile(optimizer=k.optimizers.Adam(1e-3), loss="categorical_crossentropy", jit_compile=setting == "xla")
    rng = np.random.default_rng(0)
    batch = DEMO.batch_size
    images = rng.uniform(0, 255, (batch * 8, spec.input_size, spec.input_size, 1)).astype("float32")
    labels = np.eye(2, dtype="float32")[rng.integers(0, 2, len(images))]
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch).repeat().prefetch(2)
    view.fit(data, steps_per_epoch=5, epochs=1, verbose=0)
    wall, cpu = [], []
    for _ in range(rounds):
        started, used = time.perf_counter(), time.process_time()
        view.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
        wall.append(steps * batch / (time.perf_counter() - started))
        cpu.append(steps * batch / (time.process_time() - used))
    return {"setting": setting, "wall": wall, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.rounds, args.steps)))
        return
    chosen = [name.strip() for name in args.settings.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SETTINGS))
    if unknown or args.rounds < 1 or args.steps < 1:
        parser.error(f"--settings from {', '.join(SETTINGS)} (unknown: {', '.join(unknown)}); --rounds, --steps >= 1")

    from medtk.devices.cpu import read_cpu

    print(f"CPU: {read_cpu().describe()}")
    print("| setting | images/s, median (min-max) | images per CPU-second, median |")
    print("|---|---:|---:|")
    for setting in chosen:
        done = subprocess.run([sys.executable, __file__, "--child", setting, "--rounds", str(args.rounds),
                               "--steps", str(args.steps)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"| {setting} | failed: {done.stderr.strip().splitlines()[-1]} | |")
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        wall = result["wall"]
        print(f"| {setting} | {statistics.median(wall):.2f} ({min(wall):.2f}-{max(wall):.2f}) | "
              f"{statistics.median(result['cpu']):.2f} |")


if __name__ == "__main__":
    main()
