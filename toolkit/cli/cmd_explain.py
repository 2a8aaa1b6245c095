"""`medtk explain RUN IMAGE...`: CAM, Grad-CAM or Grad-CAM++ overlays and feature maps (TensorFlow).

With `--localization` it scores every explanation method and every exported variant's CAM on the
run's test images that have lesion masks and writes RUN/localization.json (the report shows it).
An image that cannot be decoded is reported on stderr and skipped; the exit code is then 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def explain(
    run: Annotated[Path, typer.Argument(help="Run folder made by `medtk train` (its model.keras is explained).")],
    images: Annotated[Optional[list[Path]], typer.Argument(help="Images: PNG, JPEG, TIFF, BMP (8/16-bit) or DICOM.")] = None,
    method: Annotated[str, typer.Option("--method", help="cam, gradcam or gradcam++.")] = "cam",
    layer: Annotated[Optional[str], typer.Option("--layer", help="Layer for Grad-CAM(++) [default: the stage before the last, e.g. conv4_block6_out: 2x the CAM's resolution].")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for the PNGs [default: RUN/explain].")] = None,
    features: Annotated[Optional[list[str]], typer.Option("--features", help="Also draw the strongest channels of this layer (repeatable).")] = None,
    target: Annotated[Optional[str], typer.Option("--class", help="Explain this class [default: the predicted one].")] = None,
    localization: Annotated[bool, typer.Option("--localization", help="Score every method and exported variant against the test split's lesion masks; write RUN/localization.json.")] = False,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="--localization: at most this many lesion images [default: all].")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help="Interpreter threads for the exported variants.")] = None,
) -> None:
    """Explain a run's model: overlays per image (--method, --layer), feature maps (--features), localisation scores."""
    from medtk.errors import ConfigError
    from medtk.run import Run

    folder = Run(run)
    folder.require_model()
    if not images and not localization:
        raise ConfigError("give IMAGE... to explain, or --localization to score the run's test split")
    failed = False
    if images:
        failed = _explain_images(folder, images, method, layer, out or folder.explain_dir, features or [], target)
    if localization:
        _localization(folder, layer, limit, threads)
    if failed:
        raise typer.Exit(1)


def _explain_images(folder, images, method, layer, out, features, target) -> bool:
    """Write the PNGs; True if any image failed."""
    from medtk.train.explain.images import explain_files
    from medtk.train.model import load_classifier

    model = load_classifier(folder.model_file)
    summary = folder.data_summary()
    class_names = list(summary.classes) if summary is not None else [str(i) for i in range(model.output_shape[0][-1])]
    done, failed = explain_files(model, images, out, class_names=class_names, method=method, layer=layer,
                                 features=features, target=target)
    for failure in failed:
        typer.echo(f"medtk: error: {failure.error}", err=True)
    for item in done:
        typer.echo(f"{item.image}: {item.label} {item.probability:.4f}, {item.method} on {item.layer} "
                   f"({item.grid[0]}x{item.grid[1]}) -> {', '.join(item.files)}")
    return bool(failed)


def _localization(folder, layer, limit, threads) -> None:
    from medtk.train.explain.localize import localize_run

    report = localize_run(folder.root, layer=layer, limit=limit, threads=threads)
    typer.echo(f"{report.images} {report.split} images with lesion masks ({report.lesion_class}), "
               f"{report.input_size} px, output stride {report.output_stride}")
    typer.echo(f"{'map':<28} {'grid':>6} {'pointing (chance)':>18} {'energy (chance)':>16} {'IoU (chance)':>14}")
    for entry in report.scores:
        grid = f"{entry.grid[0]}x{entry.grid[1]}"
        typer.echo(f"{entry.name:<28} {grid:>6} {entry.pointing_game:>8.3f} ({entry.chance.pointing_game:.3f}) "
                   f"{entry.energy:>7.3f} ({entry.chance.energy:.3f}) {entry.iou:>6.3f} ({entry.chance.iou:.3f})")
    typer.echo(f"wrote {folder.localization_file.resolve()}")
