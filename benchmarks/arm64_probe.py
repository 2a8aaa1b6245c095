"""What medtk's base install computes on this machine for some signed models and images (used by check_arm64.py).

The same file runs on the x86 host and inside the arm64 userland, with nothing but `pip install medtk`
(no TensorFlow), so the two outputs differ only by the machine. For each model: the seal and the
signature are verified (`Classifier(..., trusted_keys=...)`), every image is predicted through the
library (probabilities, label at the model's threshold, the CAM saved for correlation) and through
`medtk predict --json`; a copy with one flipped byte must be refused. Writes OUT/probe.json and OUT/cams.npz.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from medtk.errors import ModelError
from medtk.runtime import Classifier
from medtk.runtime.versions import runtime_versions
from medtk.variants import precision_of


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--trusted-key", type=Path, required=True, help="public key (PEM) every model is signed by")
    parser.add_argument("--model", type=Path, action="append", required=True)
    parser.add_argument("--image", type=Path, action="append", required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    cams: dict[str, np.ndarray] = {}
    models = {model.name: _probe_model(model, args.image, args.trusted_key, cams) for model in args.model}
    document = {
        "runtime": runtime_versions().to_json(),
        "models": models,
        "tampered": _tampered(args.model[0], args.trusted_key, args.out),
    }
    np.savez_compressed(args.out / "cams.npz", **cams)
    (args.out / "probe.json").write_text(json.dumps(document, indent=1))
    return 0


def _probe_model(model: Path, images: list[Path], key: Path, cams: dict[str, np.ndarray]) -> dict:
    classifier = Classifier(model, num_threads=1, trusted_keys=[key])
    predictions = []
    for index, image in enumerate(images):
        prediction = classifier.predict(image)
        cams[f"{model.name}/{index}"] = np.asarray(prediction.cam, dtype=np.float32)
        predictions.append({"image": image.name, **prediction.to_dict()})
    return {
        "variant": classifier.metadata.variant,
        "precision": precision_of(classifier.metadata.variant),
        "verification": classifier.verification.status,
        "signed_by": classifier.verification.key_id,
        "predictions": predictions,
        "cli": _cli(model, images, key),
    }


def _cli(model: Path, images: list[Path], key: Path) -> dict:
    """`medtk predict --json` as a device's user runs it: the console script beside this Python."""
    medtk = Path(sys.executable).with_name("medtk")
    command = [str(medtk), "predict", str(model), *map(str, images), "--json", "--threads", "1", "--trusted-key", str(key)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        return {"exit_code": done.returncode, "stderr": done.stderr[-2000:]}
    report = json.loads(done.stdout)
    return {
        "exit_code": 0,
        "runtime": report["runtime"],
        "integrity": report["integrity"],
        "predictions": [{"image": Path(row["image"]).name, "label": row["label"], "probabilities": row["probabilities"]}
                        for row in report["predictions"]],
    }


def _tampered(model: Path, key: Path, out: Path) -> dict:
    """One flipped byte in the middle of the file: the seal must refuse it before the interpreter sees it."""
    content = bytearray(model.read_bytes())
    content[len(content) // 2] ^= 0x01
    copy = out / f"tampered-{model.name}"
    copy.write_bytes(bytes(content))
    try:
        Classifier(copy, num_threads=1, trusted_keys=[key])
    except ModelError as error:
        return {"model": model.name, "refused": True, "message": str(error)}
    return {"model": model.name, "refused": False, "message": ""}


if __name__ == "__main__":
    sys.exit(main())
