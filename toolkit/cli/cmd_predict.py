"""`medtk predict`: label and probabilities per image from a `.tflite` (LiteRT) or `.onnx` (ONNX Runtime) model, optional CAM overlays.

One bad image among many is reported on stderr and the rest still run; the exit code is 1 if any
image failed. A directory is searched recursively (sorted; image suffixes and DICOM), up to
`--max-files` files in all. Per-image warnings (an input unlike the training data) are shown in the
table's last column and in the JSON. Warnings about the model itself (e.g. a variant that failed
compress's quality gate) are one line each on stderr and the JSON's `model_warnings`; the JSON also
carries the model's `quality_gate` and `calibration` records. Nothing heavy is imported until the command runs.

`--data SRC --out RESULTS` is the archive-scale form (medtk.batch, the `medtk[scale]` extra): every image
of a folder tree, CSV manifest, `.npz` or prepared dataset (`medtk prepare`) into a resumable folder of Parquet parts, one row per image
(a bad file is a row with its error), on a local pool of `--workers` interpreters or on Ray (`--ray`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer


def predict(
    model: Annotated[Path, typer.Argument(help="A medtk .tflite or .onnx model (labels and input size are read from it; .onnx needs medtk[onnx]).")],
    images: Annotated[
        Optional[list[Path]],
        typer.Argument(help="Images (PNG, JPEG, TIFF, BMP 8/16-bit, DICOM) or folders of them (recursive)."),
    ] = None,
    cam_dir: Annotated[
        Optional[Path], typer.Option("--cam-dir", help="Write a CAM overlay PNG per image into this folder.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    threads: Annotated[
        Optional[int], typer.Option("--threads", min=1, help="Interpreter threads (default: all usable CPUs).")
    ] = None,
    delegate: Annotated[str, typer.Option("--delegate", help="auto, cpu, gpu or a delegate .so file.")] = "auto",
    trusted_key: Annotated[
        Optional[list[Path]],
        typer.Option("--trusted-key", help="Public key (PEM) the model must be signed by; repeatable. Unsigned models are refused."),
    ] = None,
    max_files: Annotated[
        Optional[int], typer.Option("--max-files", min=1, help="Most image files to run, folders included [default: 10000].")
    ] = None,
    data: Annotated[
        Optional[str],
        typer.Option("--data", help="A whole source (folder tree, CSV manifest, .npz, prepared dataset) into --out, one row per image; needs medtk[scale]."),
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", help="With --data: the results folder (Parquet parts); a rerun resumes it.")
    ] = None,
    workers: Annotated[
        Optional[int], typer.Option("--workers", help="With --data: interpreters side by side [default: usable CPUs].")
    ] = None,
    ray: Annotated[
        Optional[str],
        typer.Option("--ray", metavar="ADDRESS", help="With --data: run on Ray Data; 'local' starts a local cluster, "
                     "else a cluster address (auto, HOST:6379)."),
    ] = None,
    rows_per_part: Annotated[
        Optional[int], typer.Option("--rows-per-part", help="With --data: rows per Parquet part (what a kill can lose) [default: 1000].")
    ] = None,
) -> None:
    """Classify images with a TFLite model, without TensorFlow."""
    from medtk.errors import ConfigError

    if data is not None or out is not None:
        _batch(model, images, data, out, workers, ray, rows_per_part, trusted_key,
               conflicting={"--cam-dir": cam_dir, "--max-files": max_files, "--threads": threads,
                            "--delegate": None if delegate == "auto" else delegate})
        return
    for name, value in (("--workers", workers), ("--ray", ray), ("--rows-per-part", rows_per_part)):
        if value is not None:
            raise ConfigError(f"{name} is for a whole source: give --data SRC --out RESULTS")
    if not images:
        raise ConfigError("give images or folders, or --data SRC --out RESULTS for a whole source")
    import warnings

    from medtk.errors import MedtkError
    from medtk.runtime.classifier import Classifier
    from medtk.runtime.inputs import DEFAULT_MAX_FILES
    from medtk.runtime.prediction import JSON_DIGITS

    if model.is_dir():
        raise MedtkError(f"{model}: is a directory; give the .tflite or .onnx model file first, then images or folders")
    files = _expand(images, max_files or DEFAULT_MAX_FILES)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        classifier = Classifier(model, num_threads=threads, delegate=delegate, trusted_keys=trusted_key or None)
    model_warnings = [str(warning.message) for warning in caught]
    for message in model_warnings:
        typer.echo(f"medtk: warning: {message}", err=True)
    rows, failures = [], []
    names = _OverlayNames(cam_dir) if cam_dir is not None else None
    for image in files:
        try:
            prediction = classifier.predict(image)
            overlay_path = _write_overlay(image, prediction.cam, names.next(image)) if names else None
        except MedtkError as error:
            typer.echo(f"medtk: error: {error}", err=True)
            failures.append({"image": str(image), "error": str(error)})
            continue
        summary = prediction.to_dict(digits=JSON_DIGITS)
        rows.append({"image": str(image), **summary, "cam_overlay": overlay_path and str(overlay_path)})
    if json_output:
        typer.echo(json.dumps(_report(classifier, rows, failures, model_warnings), indent=2))
    else:
        typer.echo(_backend_line(classifier, delegate))
        typer.echo(_table(classifier.labels, rows))
    if failures:
        raise typer.Exit(1)


def _batch(model, images, data, out, workers, ray, rows_per_part, trusted_key, conflicting: dict) -> None:
    """`--data SRC --out RESULTS`: the whole source into a resumable Parquet folder (medtk.batch)."""
    from medtk.batch.job import DEFAULT_ROWS_PER_PART, BatchOptions, run_batch
    from medtk.errors import ConfigError

    if data is None or out is None:
        raise ConfigError("--data and --out go together: --data SRC --out RESULTS")
    if images:
        raise ConfigError(f"give either images ({images[0]}...) or --data, not both")
    given = [name for name, value in conflicting.items() if value is not None]
    if given:
        raise ConfigError(f"{', '.join(given)}: not used with --data (each worker runs one interpreter thread)")
    options = BatchOptions(workers=workers, ray=ray,
                           rows_per_part=DEFAULT_ROWS_PER_PART if rows_per_part is None else rows_per_part,
                           trusted_keys=tuple(trusted_key) if trusted_key else None)
    summary = run_batch(model, data, out, options)
    resumed = f", {summary.already_done} already there" if summary.already_done else ""
    typer.echo(f"{summary.out}: {summary.rows} rows ({summary.written} written now{resumed}), {summary.errors} with an "
               f"error; {summary.executor}, {summary.workers} workers")


def _expand(images: list[Path], max_files: int) -> list[Path]:
    """Files as given; folders replaced by their image files (recursive, sorted); at most `max_files` in all."""
    from medtk.errors import ConfigError
    from medtk.runtime.inputs import find_images

    files: list[Path] = []
    for image in images:
        if image.is_dir():
            found = find_images(image, max_files)
            if not found:
                raise ConfigError(f"{image}: is a directory with no image files (PNG, JPEG, TIFF, BMP, DICOM) in it")
            files.extend(found)
        else:
            files.append(image)
        if len(files) > max_files:
            raise ConfigError(f"{len(files)}+ image files: more than --max-files {max_files}; raise it or give fewer")
    return files


def _report(classifier, rows: list[dict], failures: list[dict], model_warnings: list[str]) -> dict:
    from dataclasses import asdict

    from medtk.runtime.versions import runtime_versions

    metadata = classifier.metadata
    return {
        "model": str(classifier.model_path),
        "model_version": classifier.metadata.model_version,
        "variant": classifier.metadata.variant,
        "backend": {"name": classifier.backend.name, "version": classifier.backend.version},
        "runtime": runtime_versions().to_json(),
        "delegate": classifier.delegate,
        "delegate_fallback": classifier.placement.fallback,
        "provider": classifier.placement.provider,
        "threads": classifier.num_threads,
        "integrity": {
            "status": classifier.verification.status,
            "sha256": classifier.verification.sha256,
            "signed_by": classifier.verification.key_id,
        },
        "labels": list(classifier.labels),
        "quality_gate": asdict(metadata.quality_gate) if metadata.quality_gate is not None else None,
        "calibration": asdict(metadata.calibration) if metadata.calibration is not None else None,
        "model_warnings": model_warnings,
        "predictions": rows,
        "errors": failures,
    }


def _backend_line(classifier, requested: str) -> str:
    """Which backend ran; a fallback is mentioned when a delegate was asked for by name."""
    fallback = classifier.placement.fallback
    fallback = f" ({fallback})" if fallback and requested != "auto" else ""
    provider = f" ({classifier.placement.provider})" if classifier.placement.provider else ""
    verification = classifier.verification
    integrity = {"signed": f"signed by key {verification.key_id}", "sealed": "integrity verified",
                 "weights-only": "weights checksum only", "none": "not verified"}[verification.status]
    return (
        f"model {classifier.model_path.name} ({classifier.metadata.variant}) on {classifier.backend}, "
        f"delegate {classifier.delegate}{provider}{fallback}, {classifier.num_threads} threads, {integrity}"
    )


def _table(labels: tuple[str, ...], rows: list[dict]) -> str:
    header = ["image", "label", *labels]
    lines = [[row["image"], row["label"], *(f"{row['probabilities'][label]:.4f}" for label in labels)] for row in rows]
    if any(row["warnings"] for row in rows):
        header.append("warnings")
        for line, row in zip(lines, rows):
            line.append("; ".join(row["warnings"]) or "-")
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in [header, *lines])


class _OverlayNames:
    """`<stem>_cam.png` in the folder; a second image with the same stem gets `_2`, `_3`, ..."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.used: set[str] = set()

    def next(self, image: Path) -> Path:
        name, count = f"{image.stem}_cam.png", 1
        while name in self.used:
            count += 1
            name = f"{image.stem}_cam_{count}.png"
        self.used.add(name)
        return self.folder / name


def _write_overlay(image: Path, cam, path: Path) -> Path:
    from medtk.io import atomic_write_png
    from medtk.runtime.cam import overlay

    return atomic_write_png(path, overlay(image, cam))
