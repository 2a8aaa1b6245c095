"""Where the demo's training time goes, and how close it runs to the CPU's float32 peak (issue 25).

    .venv/bin/python benchmarks/train_phases.py [--epochs 2] [--data synthetic:1200] [--out DIR] [--fma-units 2]

Trains the demo's configuration (`medtk.pipeline.DEMO` through `training_config`: ResNet50 from scratch,
96 px, output stride 16, augmentation, batch 16) for `--epochs` epochs into a fresh run folder and
prints what the trainer recorded in RUN/timings.json: each epoch's phases (training steps, precise
BatchNorm, validation, checkpointing; wall and CPU seconds) and decoding, then:

- images/s: training images / the training steps' wall seconds of the last epoch (the first also traces
  the graphs), and images per CPU-second (steadier on a shared machine).
- FLOPs per image, counted from the Keras graph: each Conv2D 2 x H_out x W_out x C_out x (k_h x k_w x
  C_in / groups), each DepthwiseConv2D 2 x H_out x W_out x C x k_h x k_w, each Dense 2 x in x out (a
  multiply-add is 2 FLOPs; BatchNorm, activations, additions and pooling are left out: under 1% here).
  A training step costs about 3 x the forward pass (the backward pass computes gradients for both the
  activations and the weights, each about one forward's work), so training FLOPs/image = 3 x forward.
- The float32 peak: usable cores x (vector bits / 32) lanes x 2 FLOPs per FMA x FMA units per core x
  clock. Vector bits: 512 with avx512f, 256 with avx2, else 128. FMA units: not in /proc/cpuinfo; 2 is
  right for most Xeon Scalable (Gold/Platinum), Sapphire Rapids and recent desktop cores; pass
  `--fma-units 1` for e.g. Xeon Silver/Bronze (one AVX-512 FMA) or small cores. Clock: lscpu's
  "CPU max MHz", else /proc/cpuinfo's "cpu MHz" (a VM reports its nominal clock).
  Utilisation = training FLOPs/image x images/s / peak (wall), and x images per CPU-second / the peak of
  one core (the share of each core the process got that did arithmetic).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import subprocess
import tempfile
from pathlib import Path

from medtk.devices.cpu import CpuInfo, read_cpu


def vector_bits(cpu: CpuInfo) -> int:
    return 512 if "avx512f" in cpu.flags else 256 if "avx2" in cpu.flags else 128


def max_mhz(cpu: CpuInfo) -> float | None:
    """lscpu's "CPU max MHz" (the turbo ceiling where the kernel knows it), else cpuinfo's "cpu MHz"."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        text = ""
    for line in text.splitlines():
        if line.startswith("CPU max MHz:"):
            return float(line.split(":", 1)[1])
    return cpu.mhz


def float32_peak(cpu: CpuInfo, fma_units: int, mhz: float) -> float:
    """FLOP/s of all usable cores: cores x lanes x 2 (an FMA) x FMA units x clock."""
    return cpu.usable_cpus * (vector_bits(cpu) // 32) * 2 * fma_units * mhz * 1e6


def forward_flops(model) -> int:
    """FLOPs of one image's forward pass, from the convolution and dense layers' shapes (module docstring)."""
    from medtk.train.tfenv import keras

    k = keras()
    total = 0
    for layer in model.layers:
        if isinstance(layer, k.layers.DepthwiseConv2D):
            _, height, width, channels = layer.output_shape
            kh, kw = layer.kernel_size
            total += 2 * height * width * channels * kh * kw
        elif isinstance(layer, k.layers.Conv2D):
            _, height, width, out = layer.output_shape
            kh, kw = layer.kernel_size
            total += 2 * height * width * out * kh * kw * layer.input_shape[-1] // layer.groups
        elif isinstance(layer, k.layers.Dense):
            total += 2 * int(layer.input_shape[-1]) * layer.units
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data", default=None, help="SRC instead of the demo's (e.g. synthetic:240 for a short run)")
    parser.add_argument("--out", type=Path, default=None, help="run folder to create (default: a temporary one)")
    parser.add_argument("--fma-units", type=int, default=2, choices=(1, 2))
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    if args.out is not None and args.out.exists():
        parser.error(f"--out {args.out}: exists; choose a new folder")

    from medtk.pipeline import DEMO, training_config
    from medtk.run import Run
    from medtk.train.tfenv import keras
    from medtk.train.workflow import train

    settings = dataclasses.replace(DEMO, epochs=args.epochs, data=args.data or DEMO.data)
    folder = args.out or Path(tempfile.mkdtemp(prefix="train_phases-"))
    try:
        outcome = train(training_config(settings), folder)
        timings = Run(folder).timings()
        model = keras().models.load_model(outcome.run.model_file, compile=False)
        report(settings, timings, forward_flops(model), args.fma_units)
    finally:
        if args.out is None:
            shutil.rmtree(folder, ignore_errors=True)


def report(settings, timings, forward: int, fma_units: int) -> None:
    from medtk.train.timings import describe_epoch, summary_lines

    cpu = read_cpu()
    print(f"demo configuration: {settings.arch} at {settings.input_size} px, output stride {settings.output_stride}, "
          f"batch {settings.batch_size}, augmentation {'on' if settings.augment else 'off'}, data {settings.data}")
    print(f"decode: {timings.decoded_images} images in {timings.decode.wall:.1f} s ({timings.decode.cpu:.1f} s CPU)")
    for epoch in timings.epochs:
        print(f"epoch {epoch.epoch + 1} ({epoch.images} images): {describe_epoch(epoch)}")
    print("totals:")
    for line in summary_lines(timings):
        print(f"  {line}")
    last = timings.epochs[-1]
    per_second = last.images / last.train.wall
    per_cpu_second = last.images / last.train.cpu
    train_flops = 3 * forward
    mhz = max_mhz(cpu)
    print(f"throughput (last epoch's training steps): {per_second:.1f} images/s wall, "
          f"{per_cpu_second:.1f} images per CPU-second")
    print(f"FLOPs per image: forward {forward / 1e9:.3f} G, training step ~3x = {train_flops / 1e9:.3f} G")
    if mhz is None:
        print("float32 peak: unknown (no clock in lscpu or /proc/cpuinfo)")
        return
    peak = float32_peak(cpu, fma_units, mhz)
    per_core = peak / cpu.usable_cpus
    print(f"float32 peak: {cpu.usable_cpus} cores x {vector_bits(cpu) // 32} lanes x 2 x {fma_units} FMA units x "
          f"{mhz:.0f} MHz = {peak / 1e9:.1f} GFLOP/s ({cpu.describe()})")
    print(f"utilisation: {100 * train_flops * per_second / peak:.1f}% of the machine's peak (wall), "
          f"{100 * train_flops * per_cpu_second / per_core:.1f}% of a core's peak per CPU-second")


if __name__ == "__main__":
    main()
