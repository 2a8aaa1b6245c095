"""`medtk compress RUN --int8`: TFLite variants of a trained run, measured through the runtime, gated.

Options left out are None and keep `CompressOptions`' defaults (the one place they are written).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def compress(
    run: Annotated[Path, typer.Argument(help="Run folder written by `medtk train`.")],
    int8: Annotated[bool, typer.Option("--int8", help="Also export full-int8 variants (calibrated; pruned + QAT by default).")] = False,
    prune: Annotated[Optional[bool], typer.Option("--prune/--no-prune", help="Magnitude-prune before int8 conversion [default: prune].")] = None,
    qat: Annotated[Optional[bool], typer.Option("--qat/--no-qat", help="Quantization-aware training before int8 conversion [default: qat].")] = None,
    prune_sparsity: Annotated[Optional[float], typer.Option("--prune-sparsity", help="Target fraction of zero conv/dense weights [default: 0.5].")] = None,
    prune_epochs: Annotated[Optional[int], typer.Option("--prune-epochs", help="Fine-tuning epochs while pruning [default: 2].")] = None,
    prune_lr: Annotated[Optional[float], typer.Option("--prune-lr", help="Learning rate while pruning [default: 1e-4].")] = None,
    qat_epochs: Annotated[Optional[int], typer.Option("--qat-epochs", help="Quantization-aware training epochs [default: 2].")] = None,
    qat_lr: Annotated[Optional[float], typer.Option("--qat-lr", help="Learning rate of quantization-aware training [default: 1e-5].")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Fine-tuning batch size [default: the run's].")] = None,
    calibration: Annotated[Optional[int], typer.Option("--calibration", help="Training images used to calibrate int8 ranges [default: 300].")] = None,
    held_out: Annotated[Optional[int], typer.Option("--held-out", help="Other training images (not calibration images) on which accuracy control ranks the ops to keep float [default: 500].")] = None,
    max_auc_drop: Annotated[Optional[float], typer.Option("--max-auc-drop", help="Largest test-AUC drop vs float32 a variant may show; beyond, the variant fails the gate [default: 0.01].")] = None,
    max_sensitivity_drop: Annotated[Optional[float], typer.Option("--max-sensitivity-drop", help="Binary: largest test-sensitivity loss at the operating point vs float32; beyond, the variant fails the gate [default: not gated].")] = None,
    min_cam_correlation: Annotated[Optional[float], typer.Option("--min-cam-correlation", help="Smallest mean test CAM correlation with float32 a variant may show; below, the variant fails the gate [default: 0.9].")] = None,
    max_cam_peak_shift: Annotated[Optional[float], typer.Option("--max-cam-peak-shift", help="Largest mean test distance (CAM cells) between a variant's CAM peak and float32's; beyond, the variant fails the gate [default: 0.5].")] = None,
    max_ece_increase: Annotated[Optional[float], typer.Option("--max-ece-increase", help="Largest rise of a variant's test calibration error (ECE, 15 bins) above float32's; beyond, its probabilities no longer mean what float32's do and the variant fails the gate [default: 0.05].")] = None,
    accuracy_control: Annotated[Optional[bool], typer.Option("--accuracy-control/--no-accuracy-control", help="When int8's validation AUC drop may exceed --max-val-drop (its upper 95% bound), also export int8_mixed with the ops that hurt agreement with float32 most kept float [default: on].")] = None,
    max_val_drop: Annotated[Optional[float], typer.Option("--max-val-drop", help="Accuracy control's budget: the upper 95% bound (paired bootstrap) of the validation AUC drop vs float32 [default: 0.005].")] = None,
    max_float_layers: Annotated[Optional[int], typer.Option("--max-float-layers", help="Accuracy control keeps at most this many int8 ops float: the noisiest ranked, or the network's last ones [default: 16, past ResNet50's last stage of 13].")] = None,
    distill: Annotated[Optional[bool], typer.Option("--distill/--no-distill", help="Pruning and QAT also learn the float model's probabilities and CAMs [default: distill].")] = None,
    onnx: Annotated[Optional[bool], typer.Option("--onnx/--no-onnx", help="Also export onnx_float32 and, with --int8, onnx_int8 (a QDQ graph for TensorRT), measured and gated through ONNX Runtime [default: on].")] = None,
    positive_class: Annotated[Optional[str], typer.Option("--positive-class", help="Binary: the finding class [default: the run's].")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="Interpreter threads while evaluating the variants.")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="Target device profile (`medtk devices`): recommend only a variant its accelerator runs (an Edge TPU: full int8).")] = None,
) -> None:
    """Export float32/float16/dynamic (and int8, accuracy-controlled int8_mixed, pruned+QAT int8) TFLite files,
    measure and gate them (AUC and CAM agreement), and name the variant to deploy.

    With --int8 an integer variant that passes every gate is recommended over a float-activation one.
    Exit 3 when no compressed variant of the kind asked for (an int8 one with --int8), or nothing the
    --device runs, passes every gate; a variant that fails beside one that passes is a warning."""
    from medtk.compress.report import format_table
    from medtk.compress.options import CompressOptions
    from medtk.compress.workflow import compress_run
    from medtk.errors import QualityGateError
    from medtk.run import Run

    options = CompressOptions.given(
        int8=int8, prune=prune, qat=qat, prune_sparsity=prune_sparsity, prune_epochs=prune_epochs, prune_lr=prune_lr,
        qat_epochs=qat_epochs, qat_lr=qat_lr, batch_size=batch_size, calibration=calibration, held_out=held_out,
        max_auc_drop=max_auc_drop, max_sensitivity_drop=max_sensitivity_drop, min_cam_correlation=min_cam_correlation,
        max_cam_peak_shift=max_cam_peak_shift,
        max_ece_increase=max_ece_increase, accuracy_control=accuracy_control, max_val_drop=max_val_drop, max_float_layers=max_float_layers, distill=distill, onnx=onnx,
        positive_class=positive_class,
        num_threads=threads, device=device,
    )
    try:
        result = compress_run(run, options)
    except QualityGateError:
        report = Run(run).compression()
        if report is not None:
            typer.echo(format_table(report))
        raise
    typer.echo(format_table(result.report))
    typer.echo(f"wrote {result.path} and {Run(run).export}")
