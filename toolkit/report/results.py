"""Report sections about the deployable files: compression, latency, CAM gallery, model card."""

from __future__ import annotations

from medtk.compress.verdict import compress_verdict
from medtk.report.camscore import MARGIN_PIXELS
from medtk.report.gallery import Gallery
from medtk.report.html import Html, esc, fmt, img, join, not_run, note, percent, plain_url, section, signed, size, table, tag
from medtk.report.inputs import RunArtifacts
from medtk.report.sections import describe_calibration, kv

VERDICT_CLASS = {"passed": "ok", "warning": "warn", "failed": "bad"}
WHERE = {
    "on-device": "measured on the device",
    "remote": "measured on the device over SSH",
    "host-estimate": "ESTIMATE: measured on this host, scaled to the device",
}


def compression_section(art: RunArtifacts) -> Html:
    report = art.compress
    if report is None:
        return section("compression", "Compression", not_run("Compression (compress.json)", "medtk compress RUN --int8"))
    rows = []
    for entry in report.variants:
        cam = entry.cam_agreement
        rows.append([
            entry.name, tag("span", entry.status, cls="ok" if entry.passed else "bad"),
            tag("strong", "recommended") if entry.name == report.recommended else "",
            size(entry.size_bytes), size(entry.gzip_bytes), _latency(entry), fmt(entry.sparsity, 2),
            str(len(entry.float_layers)) if entry.float_layers else "",
            fmt(entry.val.auc if entry.val else None, 4), fmt(entry.test.auc, 4), signed(entry.delta_auc),
            fmt(entry.test.accuracy, 4), fmt(entry.test.ece, 3), _temperature(entry), fmt(cam.correlation if cam else None, 3),
            percent(cam.peak_match if cam else None), fmt(cam.mean_peak_shift if cam else None, 2),
        ])
    reference, gate, verdict = report.reference, report.gate, compress_verdict(report)
    other_gates = (f", mean CAM correlation with float32 at least {esc(fmt(gate.min_cam_correlation))}"
                if gate.min_cam_correlation is not None else "")
    if gate.max_cam_peak_shift is not None:
        other_gates += f", mean CAM peak shift from float32 at most {esc(fmt(gate.max_cam_peak_shift))} cells"
    if gate.max_ece_increase is not None:
        other_gates += f", calibration error (ECE) at most {esc(fmt(gate.max_ece_increase))} above float32's"
    parts = [
        table(["variant", "status", "deploy", "size", "gzip", "latency (ms)", "sparsity", "float ops", "val AUC", "test AUC",
               "AUC vs float32", "accuracy", "ECE", "temperature", "CAM r", "same CAM peak", "CAM peak shift"], rows),
        note(f"Every number measured through medtk.runtime on {reference.test_images} test images; deltas are "
             f"against the float32 TFLite file (its test AUC {fmt(reference.test.auc, 4)}). "
             "ECE: expected calibration error on the test images (15 bins): how far the probabilities are from the observed frequencies. "
             "Temperature: what the file carries; training's, times the variant's own where the same calibration rule, "
             "applied to the variant's validation outputs, found one that helps on held-out folds (marked 'own'). "
             + (f"Latency: p50 of one image through the variant's own engine on the machine that ran compress "
                f"({esc(report.latency.host)}; {report.latency.threads} thread(s)), with the smallest and largest of "
                f"{report.latency.rounds} alternating rounds; on the device, `medtk bench` measures it. "
                if report.latency else "")
             + "CAM r: mean per-image Pearson correlation with the float32 CAM; same CAM peak: share of images whose "
             "peak cell matches the float32 one; CAM peak shift: mean distance, in CAM cells, from the float32 peak. Float ops: int8 operations kept in float by accuracy control. "
             f"Recommended: {report.recommendation or 'the smallest variant that passes every gate'}."),
        tag("p", Html(
            f"Quality gate (test AUC at most {esc(fmt(gate.max_auc_drop))} below float32{other_gates}): "
            + str(tag("span", verdict.level, cls=VERDICT_CLASS[verdict.level]))
        )),
    ]
    if gate.failures:
        parts.append(tag("ul", join(tag("li", f) for f in gate.failures), cls="plain"))
    if report.not_recommended:
        parts.append(note(f"Deployed: {report.recommended or 'none (no variant passes every gate)'}. Not chosen:"))
        parts.append(tag("ul", join(tag("li", f"{name}: {why}") for name, why in report.not_recommended.items()),
                         cls="plain"))
    for label, mixed, control in (("Accuracy control", "int8_mixed", report.accuracy_control),
                                  ("ONNX accuracy control", "onnx_int8_mixed", report.onnx_accuracy_control)):
        if control is not None:
            parts += _control_parts(label, mixed, control)
    steps = report.compression
    if steps.target_sparsity is not None:
        parts.append(note(f"Pruning target sparsity {fmt(steps.target_sparsity, 2)}, reached "
                          f"{fmt(steps.sparsity_after_pruning, 3)}; after QAT {fmt(steps.sparsity_after_qat, 3)}."))
    if report.note:
        parts.append(note(f"Note: {report.note}."))
    return section("compression", "Compression", *parts)


def _control_parts(label: str, mixed: str, control) -> list[Html]:
    """How one accuracy-controlled variant was searched, and why each of its ops stayed float."""
    if control.float_layers:
        outcome = (f"{len(control.float_layers)} int8 operation(s) kept in float ({control.ranking} ranking, "
                   f"{control.models_tried} models measured), validation AUC {fmt(control.val, 4)}"
                   f"{_drop_text(control.val_drop)}{_cam_text(control.val_cam)}"
                   + ("" if control.within_budget else ", still beyond the budget"))
    else:
        outcome = f"full int8 was within the budget, so no {mixed} variant was needed"
    parts = [note(
        f"{label} (ops ranked on {control.held_out_images} held-out training images by agreement with "
        f"float32, decided on the validation split; test never selects): float32 validation AUC "
        f"{fmt(control.val_reference, 4)}, full int8 {fmt(control.full_int8_val, 4)}"
        f"{_drop_text(control.full_int8_val_drop)}{_cam_text(control.full_int8_val_cam)}, budget: the drop's "
        f"upper 95% bound at most {fmt(control.max_val_drop)}, and the CAM gate met at its 95% interval's end; "
        f"{outcome}.")]
    if control.kept_float:
        parts.append(tag("ul", join(tag("li", join([tag("code", kept.tensor.split(";")[0]), f": {kept.reason}"]))
                                    for kept in control.kept_float), cls="plain"))
    elif control.float_layers:
        parts.append(tag("ul", join(tag("li", tag("code", layer)) for layer in control.float_layers), cls="plain"))
    return parts


def latency_section(art: RunArtifacts) -> Html:
    if not art.bench:
        return section("latency", "Latency", not_run("Latency (bench.json)", "medtk bench RUN/export/*.tflite --json RUN/bench.json"))
    rows, estimates = [], []
    for _, report in art.bench:
        for result in report.results:
            where, estimate = result.where, result.estimate
            device = where.device or report.device or where.detected_profile or "unprofiled host"
            rows.append([
                device, result.variant, WHERE.get(where.mode, where.mode),
                fmt(result.bare.p50_ms, 2), fmt(result.bare.p90_ms, 2), fmt(result.end_to_end.p50_ms, 2),
                "-" if estimate is None else f"{estimate.estimated_ms:.1f}",
                result.threads, f"{result.rss_peak_mb:.0f}",
            ])
            if estimate is not None:
                estimates.append(estimate)
    parts = [
        table(["device profile", "variant", "where", "p50 ms", "p90 ms", "end-to-end p50 ms", "device est. ms",
               "threads", "peak RSS MB"], rows),
        note("p50/p90: bare interpreter invoke; end-to-end: decode + preprocess + invoke + CAM for one image "
             "(Classifier.predict). Host numbers on a shared machine are noisy; compare variants measured together."),
    ]
    for estimate in _unique(estimates):
        ref = estimate.reference
        parts.append(note(
            f"Estimate for {estimate.device}: method {estimate.method} ({estimate.method_text}). "
            f"Reference: {ref.model} {ref.input_size} at {ref.latency_ms} ms ({ref.describe()}); "
            f"source: {plain_url(estimate.reference_source)}."
            + (" Approximate (reference of another precision or derived)." if estimate.approximate else "")
        ))
    parts.append(note(f"Runtime backend: {', '.join(_backends(art)) or 'n/a'}; files: {', '.join(name for name, _ in art.bench)}."))
    return section("latency", "Latency", *parts)


def _cam_text(cam) -> str:
    """', CAM r ... (95% low ...)' of a validation CAM check, '' when not recorded (older compress.json)."""
    return "" if cam is None else f", {cam.describe()}"


def _drop_text(drop: tuple[float, float, float] | None) -> str:
    """' (drop D, 95% lo to hi)' of a validation AUC drop, '' when not recorded (older compress.json)."""
    return "" if drop is None else f" (drop {drop[0]:.4f}, 95% {drop[1]:.4f} to {drop[2]:.4f})"


def _ci(test, key: str | None) -> str:
    pair = getattr(test.ci, key) if key and test.ci is not None else None
    return "" if pair is None else f" (95% CI {pair[0]:.3f}-{pair[1]:.3f})"


def _backends(art: RunArtifacts) -> list[str]:
    return sorted({result.backend for _, report in art.bench for result in report.results})


def _unique(estimates: list) -> list:
    seen, result = set(), []
    for estimate in estimates:
        key = (estimate.device, estimate.reference.model, estimate.reference.precision)
        if key not in seen:
            seen.add(key)
            result.append(estimate)
    return result


def gallery_section(gallery: Gallery | None, reason: str | None) -> Html:
    title = "Class activation maps"
    if gallery is None:
        return section("cams", title, tag("p", reason or "not run", cls="missing"))
    h, w = gallery.cam_grid
    parts = [note(
        f"{len(gallery.cases)} test images run through {' and '.join(gallery.variants)} with medtk.runtime "
        f"({gallery.backend}). Overlays show the CAM of the predicted class ({h} x {w} cells, upsampled bilinearly; "
        "red = strongest evidence)." + (" The magenta outline is the known lesion (dilated by the scoring margin)."
                                        if any(c.has_lesion_mask for c in gallery.cases) else "")
    )]
    parts.append(_localization(gallery))
    cards = []
    for case in gallery.cases:
        wrong = not all(p.correct for p in case.panels)
        figures = tag("figure", img(case.image_uri, f"{case.item} ({case.true_label})") + tag("figcaption", f"true: {case.true_label}"))
        for panel in case.panels:
            verdict = tag("span", "correct" if panel.correct else "wrong", cls="ok" if panel.correct else "bad")
            caption = Html(f"{esc(panel.variant)}: {esc(panel.label)} {esc(f'{panel.probability:.2f}')} ") + verdict
            figures += tag("figure", img(panel.uri, f"{panel.variant} CAM of {case.item}") + tag("figcaption", caption))
        head = tag("div", Html(f'<span class="id">{esc(case.item)}</span> &middot; true label <strong>{esc(case.true_label)}</strong>'), cls="head")
        cards.append(tag("div", head + tag("div", figures, cls="panels"), cls="case wrong" if wrong else "case"))
    parts.append(tag("div", join(cards), cls="gallery"))
    return section("cams", title, *parts)


def _localization(gallery: Gallery) -> Html:
    if not gallery.localization:
        return note("CAM localization: not scored (this data source has no lesion masks).")
    if gallery.cam_grid[0] * gallery.cam_grid[1] < 2:
        return note("CAM localization: not scored (a 1 x 1 CAM has no location; use a larger --input-size).")
    rows = [[loc.variant, loc.images, loc.hits, percent(loc.hit_rate), percent(loc.chance)] for loc in gallery.localization]
    h, w = gallery.cam_grid
    definition = (
        f"Peak in lesion: for each test image with a lesion ({gallery.localization[0].images} "
        f"of {gallery.scanned} scanned), the peak cell of the {gallery.lesion_class} class's {h} x {w} CAM counts as a hit when it "
        f"overlaps the lesion mask dilated by {MARGIN_PIXELS} pixels (at the image's resolution). Chance = hit rate of a "
        "cell drawn at random (the share of cells the dilated lesion touches): a coarse grid makes both high, so read the hit "
        "rate against it. A constant CAM counts as a miss."
    )
    return tag("h3", "Does the CAM point at the lesion?") + table(
        ["variant", "lesion images", "peak in lesion", "hit rate", "chance"], rows) + note(definition)


def model_card_section(art: RunArtifacts, gallery: Gallery | None, intended_use: str | None) -> Html:
    from medtk import __version__

    model = art.config.model if art.config else None
    test = art.metrics.test if art.metrics else None
    source = art.data_source or "n/a"
    versions = art.training.versions if art.training else {}

    limitations = [
        "Not a medical device; not validated clinically. Research and engineering evaluation only.",
    ]
    if str(source).startswith("synthetic"):
        limitations.append("Trained and tested on synthetic phantoms, not patient images: the numbers say nothing about clinical performance.")
    if model is not None and model.weights == "none":
        limitations.append("Trained from scratch (no pretrained weights): expect lower accuracy than transfer learning.")
    shapes = list(art.data.images.shapes) if art.data else []
    if shapes and model is not None:
        limitations.append(f"Source images are {', '.join(shapes)} px, resized to {model.input_size} x {model.input_size}: "
                           "resizing adds no detail that the source does not have.")
    if gallery is not None:
        h, w = gallery.cam_grid
        limitations.append(f"CAM resolution is {h} x {w} cells: it shows a region, not a lesion boundary.")
    if test is not None and test.n:
        limitations.append(f"Test metrics come from {test.n} images of the same source; other scanners, sites and populations "
                           "can differ. Check on local data before any use.")
    point = test.operating_point if test is not None else None
    if point is not None:
        limitations.append(f"The decision for {test.positive_class} is its probability >= {point.threshold:.4f} ({point.rule}, "
                           "chosen on validation); another site's prevalence changes PPV and NPV.")
    else:
        limitations.append("The class decision is the highest probability (argmax); no threshold was tuned.")
    backend = gallery.backend if gallery else next(iter(_backends(art)), None)
    facts = [
        ("intended use", intended_use or "Research and engineering evaluation; decision support only, not a diagnostic device."),
        ("data source", source),
        ("classes", ", ".join(art.class_names) or "n/a"),
        ("model", f"{model.arch}, input {model.input_size} px x {model.channels} channel(s)" if model else "n/a"),
        ("test metrics (float)", ", ".join(f"{k} {fmt(v, 4)}{_ci(test, key)}" for k, v, key in (
            ("AUC", test.auc, "auc"), ("accuracy", test.accuracy, None), ("sensitivity", test.sensitivity, "sensitivity"),
            ("specificity", test.specificity, "specificity"))) if test else "n/a"),
        ("decision", f"{test.positive_class} if its probability >= {point.threshold:.4f} ({point.rule}, chosen on validation)"
         if point is not None else "highest probability (argmax)"),
        ("calibration", describe_calibration(test.calibration) if test is not None and test.calibration
         else "not calibrated"),
        ("versions", f"medtk {versions.get('medtk', __version__)} (report by {__version__}), TensorFlow "
                     f"{versions.get('tensorflow', 'n/a')}, Python {versions.get('python', 'n/a')}, runtime backend {backend or 'n/a'}"),
    ]
    return section("model-card", "Model card", kv(facts), tag("h3", "Limitations"),
                   tag("ul", join(tag("li", text) for text in limitations), cls="plain"))


def _latency(entry) -> str:
    """'p50 [low-high]' in ms on the compress host; empty for a compress.json from before it was measured."""
    if entry.latency_ms is None:
        return ""
    low, high = entry.latency_range_ms or (entry.latency_ms, entry.latency_ms)
    return f"{fmt(entry.latency_ms, 2)} [{fmt(low, 2)}-{fmt(high, 2)}]"


def _temperature(entry) -> str:
    """The temperature a variant's file carries, marked when the variant justified its own on top of training's."""
    if entry.temperature is None:
        return ""
    own = entry.calibration is not None and entry.calibration.applied
    return fmt(entry.temperature, 3) + (f" (own x{fmt(entry.calibration.temperature, 2)})" if own else "")
