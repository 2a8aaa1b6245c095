"""`medtk compress RUN`: the run's float model -> measured TFLite (and ONNX) variants in RUN/export + RUN/compress.json.

Order of work: check everything that can be checked cheaply (run folder, options, writable output,
model, data) before any long step; convert and measure every variant in a staging folder; decide the
quality gate and seal each variant's outcome into its own file (a failed variant says so wherever it is
copied); publish the files and compress.json; only then raise if the gate failed, so the failed
variants stay on disk for inspection.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from medtk.compress.inputs import Inputs, load_inputs, training_intensity
from medtk.compress.options import CompressOptions
from medtk.compress.recommend import (Target, apply_gates, quality_gates, recommend_per_format, recommendation_rule,
                                      reference_entry, with_deltas)
from medtk.compress.variant_temperature import VariantTemperature
from medtk.compress.verdict import compress_verdict
from medtk.errors import ModelError, QualityGateError
from medtk.run import Run
from medtk.schema import CompressReport, CompressionSteps, Reference, VariantResult
from medtk.schema.compress import AccuracyControl, KerasReference
from medtk.variants import PLAIN, REFERENCE, VARIANTS, get_variant

MIXED = next(variant.name for variant in VARIANTS if variant.mixed and variant.format == "tflite")
ONNX_MIXED = next(variant.name for variant in VARIANTS if variant.mixed and variant.format == "onnx")

log = logging.getLogger(__name__)
SPARSITY_NOTE = "sparsity shrinks the compressed (gzip) file, not the latency on XNNPACK"


@dataclass(frozen=True)
class CompressResult:
    report: CompressReport  # what RUN/compress.json holds
    path: Path


def compress_run(run_dir: Path, options: CompressOptions) -> CompressResult:
    """Export, measure and gate every variant of the run's model (see the module docstring)."""
    from medtk.compress.artifacts import Staging

    options.check()
    run = Run(Path(run_dir))
    run.require_complete()
    _check_writable(run)
    stale = _previous_variants(run)
    inputs = load_inputs(run, options)
    staging = Staging(run)
    try:
        report = _export_all(run, inputs, options, staging)
        final = staging.publish([v.name for v in report.variants], stale)
    finally:
        staging.discard()
    report = replace(report, variants=tuple(
        replace(entry, path=Path(final[entry.name]).relative_to(run.root).as_posix()) for entry in report.variants
    ))
    run.write(run.compress_file, report)
    verdict = compress_verdict(report)
    if verdict.failed:
        raise QualityGateError(f"{run.compress_file}: quality gate failed: {verdict.summary}")
    for failure in report.gate.failures:
        log.warning("quality gate: %s (not recommended; deploy %s)", failure, report.recommended)
    return CompressResult(report=report, path=run.compress_file)


def _check_writable(run: Run) -> None:
    """Fail before the long work when the outputs could not be written (by really trying)."""
    import tempfile

    for folder in (run.root, run.export):
        if not folder.exists():
            continue
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as error:
            raise ModelError(f"{folder}: output folder is not writable ({error.strerror})") from None


def _previous_variants(run: Run) -> set[str]:
    """Variant files an earlier compress may have left in RUN/export (replaced or removed at publish)."""
    previous = {variant.name for variant in VARIANTS}
    try:
        old = run.compression()
    except ModelError:
        return previous  # a corrupt compress.json is replaced anyway
    if old is not None:
        previous |= {entry.name for entry in old.variants if "/" not in entry.name}
    return previous


@dataclass(frozen=True)
class _Built:
    variant: str
    model: bytes
    sparsity: float
    float_layers: tuple[str, ...] = ()


def _export_all(run: Run, inputs: Inputs, options: CompressOptions, staging) -> CompressReport:
    from medtk.compress.artifacts import gzip_size, model_metadata, provenance
    from medtk.compress.convert import Int8Calibration, convert
    from medtk.clinical.calibration import expected_calibration_error
    from medtk.compress.evaluate import cam_agreement, headline
    from medtk.compress.sparsity import kernel_sparsity
    from medtk.progress import track
    from medtk.runtime.metadata import OperatingPoint
    from medtk.train.cam_geometry import cam_geometry

    origin = provenance(run.root, inputs.config_text, inputs.source)
    intensity = training_intensity(run)
    geometry = cam_geometry(inputs.model)  # pruning and QAT keep the graph's strides and padding
    float_sparsity = kernel_sparsity(inputs.model)

    temperatures: dict[str, VariantTemperature] = {}  # each variant's own, once its validation outputs are in

    def metadata(variant: str, metrics: dict | None, point: OperatingPoint | None, gate=None):
        own = temperatures.get(variant)
        return model_metadata(
            variant=variant, labels=inputs.class_names, size=inputs.size, channels=inputs.channels,
            dtype=get_variant(variant).input_dtype, provenance=origin, metrics=metrics,
            positive_class=inputs.finding.name if inputs.finding else None, operating_point=point,
            calibration=own.calibration if own else inputs.temperature, intensity=intensity, cam_geometry=geometry,
            quality_gate=gate,
        )

    built: list[_Built] = []
    for name in PLAIN:
        log.info("converting %s", name)
        built.append(_Built(name, convert(inputs.model, get_variant(name).converter), float_sparsity))
    control = None
    if options.int8:
        log.info("converting int8 (calibrating on %d images)", len(inputs.calibration))
        calibrated = Int8Calibration(inputs.model, list(inputs.calibration), debug=list(inputs.held_out) or None)
        built.append(_Built("int8", calibrated.quantize(), float_sparsity))
        if options.accuracy_control:
            reference = next(item for item in built if item.variant == REFERENCE)
            control, mixed = _accuracy_control(calibrated, reference, MIXED, inputs, options, staging, metadata)
            if mixed is not None:
                built.append(_Built(MIXED, mixed.model, float_sparsity, mixed.float_layers))
    steps = CompressionSteps()
    if options.compressed_variant() is not None:
        model_bytes, sparsity, steps = _compressed_model(inputs, options)
        built.append(_Built(options.compressed_variant(), model_bytes, sparsity))
    onnx_control = None
    if options.onnx:
        onnx_built, onnx_control = _onnx_variants(inputs, options, float_sparsity, staging, metadata)
        built += onnx_built

    outputs, entries, measured = {}, [], {}
    for item in track(built, len(built), f"measuring {len(built)} variants on validation and test"):
        item, temperatures[item.variant], val_out = _own_temperature(item, inputs, options, staging, metadata)
        val, outputs[item.variant] = _measure(staging.path(item.variant), inputs, options, val_out)
        test = outputs[item.variant].metrics
        point = val.operating_point
        decision = OperatingPoint(rule=point.rule, threshold=point.threshold) if point else None
        exported = {"test_auc": test.auc, "test_accuracy": test.accuracy, "test_sensitivity": test.sensitivity,
                    "test_specificity": test.specificity, "test_images": len(inputs.test_labels),
                    "val_auc": val.auc}
        measured[item.variant] = (item.model, exported, decision)
        entries.append(VariantResult(  # sizes once the final file is written, below
            name=item.variant, path="", status="passed", input_dtype=get_variant(item.variant).input_dtype,
            size_bytes=0, gzip_bytes=0, sparsity=round(float(item.sparsity), 4),
            test=replace(headline(test), ece=expected_calibration_error(outputs[item.variant].probs, inputs.test_labels)),
            val=headline(val), operating_point=test.operating_point, ci=test.ci, float_layers=item.float_layers,
            temperature=round(temperatures[item.variant].calibration.temperature, 6),
            calibration=temperatures[item.variant].decision,
        ))
    ref_test = reference_entry(entries).test
    entries = [replace(entry, cam_agreement=cam_agreement(outputs[REFERENCE], outputs[entry.name]))
               for entry in with_deltas(entries)]
    entries, gate, failures = apply_gates(entries, options, steps.sparsity_after_qat)
    outcomes = quality_gates(entries, options, steps.sparsity_after_qat)

    def sealed(entry: VariantResult) -> VariantResult:
        """The final file: its metrics, its operating point and its gate outcome in the sealed metadata."""
        model, exported, decision = measured[entry.name]
        final = staging.write(entry.name, model, metadata(entry.name, exported, decision, outcomes.get(entry.name)))
        return replace(entry, size_bytes=len(final), gzip_bytes=gzip_size(final))

    entries = [sealed(entry) for entry in entries]
    target = _target(options)
    entries, latency = _timed(entries, inputs, options, target, staging)
    by_format, not_recommended = recommend_per_format(entries, failures, target)
    recommended = by_format["tflite"]
    keras_test = _keras_test(run)
    return CompressReport(
        reference=Reference(
            variant=REFERENCE,
            measured="float32 TFLite through medtk.runtime on the test split; every delta is against it",
            test=ref_test, test_images=int(len(inputs.test_labels)), keras_test=keras_test,
        ),
        variants=tuple(entries),
        gate=gate,
        options=asdict(options),
        compression=steps,
        calibration_images=int(len(inputs.calibration)),
        provenance=origin,
        note=SPARSITY_NOTE,
        recommended=recommended,
        recommended_by_format=by_format,
        not_recommended=not_recommended,
        recommendation=recommendation_rule(target),
        accuracy_control=control,
        onnx_accuracy_control=onnx_control,
        latency=latency,
    )


def _onnx_variants(inputs: Inputs, options: CompressOptions, sparsity: float, staging, metadata):
    """onnx_float32 from the same Keras model (tf2onnx); with --int8, onnx_int8 (QDQ) from the same
    calibration images as the TFLite int8 (`medtk.compress.onnx_export`), and with accuracy control
    onnx_int8_mixed when onnx_int8 is not within budget; (the variants, the accuracy-control record)."""
    from medtk.compress.onnx_export import QdqCalibration, to_onnx

    log.info("converting onnx_float32 (tf2onnx)")
    float_model = to_onnx(inputs.model)
    built = [_Built("onnx_float32", float_model, sparsity)]
    if not options.int8:
        return built, None
    log.info("quantizing onnx_int8 (ONNX Runtime QDQ, calibrating on %d images)", len(inputs.calibration))
    control = None
    with QdqCalibration(float_model, list(inputs.calibration)) as calibrated:
        built.append(_Built("onnx_int8", calibrated.quantize(), sparsity))
        if options.accuracy_control:
            control, mixed = _accuracy_control(calibrated, built[0], ONNX_MIXED, inputs, options, staging, metadata)
            if mixed is not None:
                built.append(_Built(ONNX_MIXED, mixed.model, sparsity, mixed.float_layers))
    return built, control


def _timed(entries: list[VariantResult], inputs: Inputs, options: CompressOptions, target: Target, staging):
    """(entries with their latency on this host, how it was measured): what the recommendation weighs
    (`medtk.compress.latency`). Threads: --threads, else the target device's default, else every core."""
    from medtk.compress.latency import measure_latencies
    from medtk.runtime.backend import resolve_threads

    threads = resolve_threads(options.num_threads, "--threads")
    if options.num_threads is None and target.device is not None:
        from medtk.devices import load_profile

        threads = min(threads, load_profile(target.device).default_threads)
    images = inputs.val_images if len(inputs.val_images) else inputs.test_images
    log.info("timing %d variants on this host (%d thread(s), alternating rounds)", len(entries), threads)
    found, setting = measure_latencies({entry.name: staging.path(entry.name) for entry in entries}, images[0], threads)
    return [replace(entry, latency_ms=found[entry.name].p50_ms, latency_range_ms=found[entry.name].round_range_ms)
            for entry in entries], setting


def _target(options: CompressOptions) -> Target:
    """--int8 asks for an integer model; --device's profile says what its accelerator runs."""
    if options.device is None:
        return Target(integer=options.int8)
    from medtk.devices import load_profile

    profile = load_profile(options.device)
    return Target(integer=options.int8, device=profile.name, runs=profile.runs)


def _own_temperature(item: _Built, inputs: Inputs, options: CompressOptions, staging, metadata):
    """(the variant as it ships, its `VariantTemperature`, its validation outputs) after training's
    calibration rule has seen this variant's own validation outputs (`medtk.compress.variant_temperature`);
    a temperature it justifies is folded into the file, which is then measured again."""
    from medtk.compress.evaluate import run_model
    from medtk.compress.variant_temperature import decide_variant_temperature, scale_class_scores
    from medtk.variants import format_of

    staging.write(item.variant, item.model, metadata(item.variant, None, None))
    val_out = run_model(staging.path(item.variant), inputs.val_images, options.num_threads)
    own = decide_variant_temperature(val_out.cams, inputs.val_labels, inputs.temperature, seed=inputs.config.data.seed)
    if not own.decision.applied:
        return item, own, val_out
    log.info("%s: %s", item.variant, own.calibration.reason)
    item = replace(item, model=scale_class_scores(item.model, format_of(item.variant), own.factor))
    staging.write(item.variant, item.model, metadata(item.variant, None, None))
    return item, own, run_model(staging.path(item.variant), inputs.val_images, options.num_threads)


def _measure(path: Path, inputs: Inputs, options: CompressOptions, val_out):
    """Score one exported file's validation outputs `val_out` and run it on test through the runtime:
    (val metrics, test outputs).

    A binary model's threshold is chosen on validation for this variant (int8 shifts probabilities),
    then test is reported at it; test never selects anything.
    """
    from medtk.clinical import split_metrics
    from medtk.compress.evaluate import run_model

    rule = inputs.config.clinical.operating_point if inputs.finding else None
    seed = inputs.config.data.seed
    val = split_metrics(inputs.val_labels, val_out.probs, inputs.class_names, finding=inputs.finding, rule=rule,
                        chosen_here=True)
    threshold = val.operating_point.threshold if val.operating_point else None
    test_out = run_model(path, inputs.test_images, options.num_threads)
    test = split_metrics(inputs.test_labels, test_out.probs, inputs.class_names, finding=inputs.finding,
                         rule=rule if threshold is not None else None, threshold=threshold, intervals_seed=seed)
    return val, replace(test_out, metrics=test)


def _accuracy_control(calibrated, reference: _Built, mixed_name: str, inputs: Inputs, options: CompressOptions,
                      staging, metadata):
    """Search `mixed_name` (int8_mixed, onnx_int8_mixed: `medtk.compress.accuracy_control`) against
    `reference` (float32 in the same format, run by the same engine): ranked on the held-out training
    images, decided on validation; (record, result or None).

    None when full int8 is within budget on validation (its AUC drop within `max_val_drop` at its upper 95%
    bound, its CAM within the CAM gate at its interval's end), when the validation AUC is undefined (one
    class), or when no training image is left over from calibration."""
    from medtk.compress.accuracy_control import CamBudget, Evidence, quantize_with_accuracy_control
    from medtk.compress.evaluate import run_model

    if len(set(inputs.val_labels.tolist())) < 2:
        log.warning("validation AUC undefined (one class in the validation split): no accuracy control")
        return None, None
    if len(inputs.held_out) == 0:
        log.warning("every training image is a calibration image; none is left to rank int8 ops on: no accuracy control")
        return None, None

    def evidence(variant: str, model: bytes) -> Evidence:
        staging.write(variant, model, metadata(variant, None, None))  # rewritten when the variants are measured
        path = staging.path(variant)
        return Evidence(held_out=run_model(path, inputs.held_out, options.num_threads),
                        val=run_model(path, inputs.val_images, options.num_threads))

    found = quantize_with_accuracy_control(
        calibrated, lambda model: evidence(mixed_name, model), evidence(reference.variant, reference.model),
        inputs.val_labels, positive_index=inputs.finding.index if inputs.finding else None,
        max_drop=options.max_val_drop, max_float_layers=options.max_float_layers, seed=inputs.config.data.seed,
        cam_budget=CamBudget(options.min_cam_correlation, options.max_cam_peak_shift),
    )
    control = AccuracyControl(
        max_val_drop=options.max_val_drop, max_float_layers=options.max_float_layers,
        val_reference=round(found.reference_val_auc, 6), full_int8_val=_round(found.full.val_auc),
        val=_round(found.chosen.val_auc), within_budget=found.within_budget, ranking=found.ranking,
        float_layers=found.float_layers, models_tried=len(found.attempts), held_out_images=len(inputs.held_out),
        full_int8_val_drop=_drop(found.full), val_drop=_drop(found.chosen), kept_float=found.kept_float,
        full_int8_val_cam=_rounded(found.full.val_cam), val_cam=_rounded(found.chosen.val_cam),
    )
    if not found.float_layers and not found.within_budget:
        log.warning("int8 is not within budget on validation (%s), and keeping no int8 op float brought its outputs "
                    "closer to float32's on the held-out images: no %s variant", _budget_text(found.full), mixed_name)
        return control, None
    if not found.float_layers:
        log.info("int8 is within budget on validation (%s): no %s variant needed", _budget_text(found.full), mixed_name)
        return control, None
    log.info("%s: %d op(s) kept float (%s ranking), %s%s", mixed_name, len(found.float_layers), found.ranking,
             _budget_text(found.chosen), "" if found.within_budget else ", NOT within budget")
    return control, found


def _budget_text(attempt) -> str:
    """What accuracy control decided an attempt on, for the log."""
    low, high = attempt.val_drop_interval
    return f"AUC drop {attempt.val_drop:.4f}, 95% {low:.4f}..{high:.4f}; {attempt.val_cam.describe()}"


def _drop(attempt) -> tuple[float, float, float]:
    """(point, 95% low, 95% high) of an attempt's validation AUC drop, for compress.json."""
    return round(attempt.val_drop, 6), round(attempt.val_drop_interval[0], 6), round(attempt.val_drop_interval[1], 6)


def _rounded(cam):
    """A `ValidationCam` at compress.json's precision."""
    return replace(cam, **{name: _round(value) for name, value in asdict(cam).items()})


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _keras_test(run: Run) -> KerasReference | None:
    metrics = run.metrics()
    test = metrics.test if metrics else None
    return KerasReference(auc=test.auc, accuracy=test.accuracy) if test else None


def _compressed_model(inputs: Inputs, options: CompressOptions) -> tuple[bytes, float, CompressionSteps]:
    """Prune and/or QAT a copy of the float model, then convert it to full int8."""
    from medtk.compress.convert import convert
    from medtk.compress.prune import copy_model, plan_schedule, prune
    from medtk.compress.qat import quantization_aware_training
    from medtk.compress.sparsity import kernel_sparsity

    from medtk.compress.finetune import Distillation

    batch_size = options.batch_size or inputs.config.train.batch_size
    model, steps = copy_model(inputs.model), CompressionSteps(batch_size=batch_size)
    distillation = Distillation(teacher=copy_model(inputs.model)) if options.distill else None
    if options.prune:
        model, reached = prune(
            model, inputs.training, sparsity=options.prune_sparsity, epochs=options.prune_epochs,
            learning_rate=options.prune_lr, batch_size=batch_size, distillation=distillation,
        )
        schedule = plan_schedule(options.prune_sparsity, options.prune_epochs, inputs.training.steps_per_epoch(batch_size))
        steps = replace(steps, target_sparsity=options.prune_sparsity, sparsity_after_pruning=round(reached, 4),
                        schedule=asdict(schedule))
    if options.qat:
        model = quantization_aware_training(
            model, inputs.training, prune_preserve=options.prune, epochs=options.qat_epochs,
            learning_rate=options.qat_lr, batch_size=batch_size, distillation=distillation,
        )
    sparsity = kernel_sparsity(model)
    if options.prune and options.qat:
        steps = replace(steps, sparsity_after_qat=round(sparsity, 4))
        log.info("sparsity after QAT: %.3f (target %.3f)", sparsity, options.prune_sparsity)
    log.info("converting %s", options.compressed_variant())
    return convert(model, "int8", list(inputs.calibration)), sparsity, steps
