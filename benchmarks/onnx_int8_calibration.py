"""Which ONNX Runtime calibration method gives onnx_int8 the ranges that keep float32's answers?

    nice -n 5 .venv/bin/python benchmarks/onnx_int8_calibration.py RUN [--method minmax percentile entropy]
    nice -n 5 .venv/bin/python benchmarks/onnx_int8_calibration.py --memory 300 [--method percentile]

The run's Keras model to ONNX (as compress does), then one QDQ int8 per method from compress's own
calibration images (a seeded sample of 300 training images), each run through ONNX Runtime on the
validation and test splits: AUC and its drop against the float ONNX, CAM correlation and peak shift
against it, and test ECE. Prints one line per method (the findings go to RESULTS.md by hand).

`--memory N`: peak RSS (VmHWM: ru_maxrss would report this parent's TensorFlow peak) and time of
`quantize_qdq` alone on N random 224 px images for an untrained ResNet50 (1 channel), each method in a
fresh process: what the calibration holds in memory.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def run(model: bytes, images: np.ndarray):
    """(probs, cams) of an ONNX model on prepared uint8 images, one at a time as the runtime does."""
    import onnxruntime as ort

    from medtk.compress.evaluate import Outputs

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    probs, cams = zip(*(session.run(["probs", "cam"], {"pixels": image[None].astype(np.float32)}) for image in images))
    return Outputs(probs=np.concatenate(probs), cams=np.concatenate(cams))


def memory(count: int, methods: list[str]) -> None:
    import subprocess
    import sys
    import tempfile

    from medtk.compress.onnx_export import to_onnx
    from medtk.train.model import ModelSpec, build_classifier

    with tempfile.TemporaryDirectory() as folder:
        model = Path(folder) / "resnet50_224.onnx"
        model.write_bytes(to_onnx(build_classifier(ModelSpec(input_size=224, weights="none"))))
        for method in methods:
            child = f"""
import re, time, numpy as np
from medtk.compress.onnx_export import quantize_qdq
rng = np.random.default_rng(0)
images = [rng.integers(0, 256, (224, 224, 1), dtype=np.uint8) for _ in range({count})]
started = time.monotonic()
quantize_qdq(open({str(model)!r}, "rb").read(), images, method={method!r})
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
print(f"{method}: {count} images, peak RSS {{peak // 1024}} MB, "
      f"{{time.monotonic() - started:.0f}} s")
"""
            print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True).stdout.strip(),
                  flush=True)


def main() -> None:
    from medtk.compress.onnx_export import CALIBRATION_METHODS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, nargs="?")
    parser.add_argument("--method", nargs="+", choices=list(CALIBRATION_METHODS), default=list(CALIBRATION_METHODS))
    parser.add_argument("--memory", type=int, metavar="N", help="only the memory of calibrating N 224 px images")
    args = parser.parse_args()
    if args.memory:
        return memory(args.memory, args.method)
    if args.run is None:
        parser.error("RUN is required (or --memory N)")

    from medtk.clinical.bootstrap import rank_auc
    from medtk.clinical.calibration import expected_calibration_error
    from medtk.compress.evaluate import cam_agreement
    from medtk.compress.inputs import load_inputs
    from medtk.compress.onnx_export import quantize_qdq, to_onnx
    from medtk.compress.options import CompressOptions
    from medtk.run import Run

    inputs = load_inputs(Run(args.run), CompressOptions(int8=True, prune=False, qat=False, accuracy_control=False))
    positive = inputs.finding.index if inputs.finding else 1
    float_model = to_onnx(inputs.model)
    reference = {split: run(float_model, images) for split, images in
                 (("val", inputs.val_images), ("test", inputs.test_images))}
    labels = {"val": inputs.val_labels == positive, "test": inputs.test_labels == positive}
    auc = {split: rank_auc(labels[split], out.probs[:, positive]) for split, out in reference.items()}
    print(f"float32 onnx: val AUC {auc['val']:.4f}, test AUC {auc['test']:.4f}, test ECE "
          f"{expected_calibration_error(reference['test'].probs, inputs.test_labels):.3f}")
    for method in args.method:
        started = time.monotonic()
        quantized = quantize_qdq(float_model, list(inputs.calibration), method=method)
        seconds = time.monotonic() - started
        out = {split: run(quantized, images) for split, images in
               (("val", inputs.val_images), ("test", inputs.test_images))}
        cells = []
        for split in ("val", "test"):
            value = rank_auc(labels[split], out[split].probs[:, positive])
            cam = cam_agreement(reference[split], out[split])
            cells.append(f"{split} AUC {value:.4f} ({value - auc[split]:+.4f}), CAM r {cam.correlation:.3f}, "
                         f"shift {cam.mean_peak_shift:.2f}")
        ece = expected_calibration_error(out["test"].probs, inputs.test_labels)
        print(f"{method}: {'; '.join(cells)}; test ECE {ece:.3f}; quantized in {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
