"""Why does int8 lose more AUC on test than on validation (issue 22)? Per split: the int8 model's logit
error against float32, the AUC it costs, and per layer, how much of each op's float output falls outside
the int8 range calibration fixed (clipping) and its rounding noise.

    nice -n 5 .venv/bin/python benchmarks/int8_shift.py RUN [--calibration 300] [--held-out 600] [--layers 12]
        [--keep-float SUBSTRING ...] [--no-layers] [--int8-head] [--blank-images]

Splits: `calib` (the images compress calibrates on: a seeded sample of the training split), `held-out`
(other training images), `val`, `test`. Prints plain text (the findings go to RESULTS.md by hand).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def outputs(model: bytes, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits (the CAM averaged over cells: what the softmax sees) and cams of `model` on uint8 images."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model, num_threads=2)
    runner = interpreter.get_signature_runner()
    dtype = runner.get_input_details()["pixels"]["dtype"]
    cams = np.stack([runner(pixels=image[None].astype(dtype))["cam"][0] for image in images])
    return cams.mean(axis=(1, 2)), cams


def auc(labels: np.ndarray, score: np.ndarray) -> float:
    from medtk.clinical.bootstrap import rank_auc

    return rank_auc(labels == 1, score)


def layer_table(calibrated, images: np.ndarray) -> dict[str, tuple[float, float, float]]:
    """{op output tensor: (noise = rmse / std, fraction clipped, fraction of float output energy clipped)}."""
    def clipped(f, q, scale, zero_point):
        low, high = scale * (-128 - zero_point), scale * (127 - zero_point)
        return float(np.mean((f < low - scale / 2) | (f > high + scale / 2)))

    def energy(f, q, scale, zero_point):
        low, high = scale * (-128 - zero_point), scale * (127 - zero_point)
        lost = np.clip(f, low, high) - f
        return float(np.sum(lost**2) / max(np.sum((f - f.mean()) ** 2), 1e-30))

    debugger = calibrated._debugger
    debugger._data_gen = lambda: ([image[None].astype(np.float32)] for image in images)
    debugger.options = calibrated._options((), layer_direct_compare_metrics={
        "float_std": lambda f, q, s, z: float(np.std(f)), "clipped": clipped, "energy": energy,
    })
    debugger.run()
    table = {}
    for name, stats in debugger.layer_statistics.items():
        noise = np.sqrt(stats["mean_squared_error"]) / stats["float_std"] if stats["float_std"] > 0 else 0.0
        table[name] = (float(noise), float(stats["clipped"]), float(stats["energy"]))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--calibration", type=int, default=300)
    parser.add_argument("--held-out", type=int, default=600)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--debug-images", type=int, default=100, help="images per split for the per-layer table")
    parser.add_argument("--keep-float", action="append", default=[], metavar="SUBSTRING",
                        help="also measure int8 with the ops whose output tensor name contains SUBSTRING kept float "
                             "(repeatable: one variant per use)")
    parser.add_argument("--no-layers", action="store_true", help="skip the per-layer table (slow)")
    parser.add_argument("--int8-head", action="store_true",
                        help="quantize the head (cam conv, logits) too, as medtk did before issue 22")
    parser.add_argument("--blank-images", action="store_true",
                        help="calibrate on a black and a white image too, as medtk did before b1ee130 (they widened "
                             "every range)")
    args = parser.parse_args()

    from medtk.compress.convert import Int8Calibration, convert
    from medtk.compress.inputs import _calibration_indices
    from medtk.run import Run
    from medtk.train.model import load_classifier
    from medtk.train.pipeline import prepare_split

    run = Run(args.run)
    model = load_classifier(run.model_file)
    size, channels = int(model.input_shape[1]), int(model.input_shape[3])
    dataset = run.dataset()
    train = dataset.splits["train"]
    train_images = prepare_split(train, size, channels)
    train_labels = np.asarray(train.labels)
    picked = _calibration_indices(len(train), args.calibration, run.config().data.seed)
    rest = np.setdiff1d(np.arange(len(train)), picked)
    rest = np.random.default_rng(1).permutation(rest)[: args.held_out]
    splits = {
        "calib": (train_images[picked], train_labels[picked]),
        "held-out": (train_images[rest], train_labels[rest]),
        "val": (prepare_split(dataset.splits["val"], size, channels), np.asarray(dataset.splits["val"].labels)),
        "test": (prepare_split(dataset.splits["test"], size, channels), np.asarray(dataset.splits["test"].labels)),
    }
    calibration = list(splits["calib"][0])
    if args.blank_images:
        calibration += [np.zeros_like(calibration[0]), np.full_like(calibration[0], 255)]
    calibrated = Int8Calibration(model, calibration, float_head=not args.int8_head)
    models = {"float32": convert(model, "float32"), "int8": calibrated.quantize()}
    tensors = [error.tensor for error in calibrated.layer_errors()]
    for part in args.keep_float:
        chosen = [tensor for tensor in tensors if part in tensor.split(";")[0]]
        print(f"int8, float: {part} -> {[t.split(';')[0] for t in chosen]}")
        models[f"int8 float:{part}"] = calibrated.quantize(chosen)

    print(f"run {args.run}; calibration {len(picked)} training images (seed {run.config().data.seed})")
    print("\npixels per split: mean, std, 1st/99th percentile, positives")
    for name, (images, labels) in splits.items():
        print(f"  {name:9s} {images.mean():6.1f} {images.std():6.1f} {np.percentile(images, 1):5.0f}"
              f" {np.percentile(images, 99):5.0f}  {labels.mean():.3f} of {len(labels)}")

    print("\nper split: AUC float32 -> int8 (delta); logit difference z = l1 - l0: std of float z, "
          "RMS of int8 error, error mean (bias), error/std; fraction of pos-neg pairs whose order flips or ties")
    for name, (images, labels) in splits.items():
        z = {}
        for variant, data in models.items():
            logits, _ = outputs(data, images)
            z[variant] = logits[:, 1] - logits[:, 0]
        for variant in list(models)[2:]:
            print(f"  {name:9s} {variant}: AUC {auc(labels, z[variant]):.4f}, rms err "
                  f"{np.sqrt(np.mean((z[variant] - z['float32'])**2)):.3f}")
        error = z["int8"] - z["float32"]
        a, b = auc(labels, z["float32"]), auc(labels, z["int8"])
        pos, neg = labels == 1, labels == 0
        gap_f = z["float32"][pos][:, None] - z["float32"][neg][None, :]
        gap_q = z["int8"][pos][:, None] - z["int8"][neg][None, :]
        flips = float(np.mean(np.sign(gap_f) != np.sign(gap_q)))
        print(f"  {name:9s} {a:.4f} -> {b:.4f} ({b - a:+.4f})  std z {z['float32'].std():.3f}  rms err "
              f"{np.sqrt(np.mean(error**2)):.3f}  bias {error.mean():+.3f}  err/std {error.std() / z['float32'].std():.3f}"
              f"  flips {flips:.4f}  median |z| pos {np.median(np.abs(z['float32'][pos])):.2f} neg {np.median(np.abs(z['float32'][neg])):.2f}")

    if args.no_layers:
        return
    print(f"\nper layer on {args.debug_images} images of each split: noise (rmse/std) | clipped fraction | "
          "clipped energy; the layers with the most clipping on test")
    tables = {name: layer_table(calibrated, images[: args.debug_images]) for name, (images, _) in splits.items()}
    worst = sorted(tables["test"], key=lambda layer: -tables["test"][layer][2])[: args.layers]
    print("  " + " " * 48 + "".join(f"{name:>28s}" for name in tables))
    for layer in worst:
        short = layer.split(";")[0][-46:]
        cells = "".join(f"{t[layer][0]:9.4f} {t[layer][1]:8.5f} {t[layer][2]:8.5f}" + "  " for t in tables.values())
        print(f"  {short:46s}  {cells}")
    print("\nsummed over all layers: noise, clipped fraction, clipped energy")
    for name, table in tables.items():
        values = np.array(list(table.values()))
        print(f"  {name:9s} {values[:, 0].sum():8.3f} {values[:, 1].sum():9.5f} {values[:, 2].sum():9.5f}")


if __name__ == "__main__":
    main()
