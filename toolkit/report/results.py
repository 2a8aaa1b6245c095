"""Report sections about the deployable files: compression, latency, CAM gallery, model card."""

from __future__ import annotations

from medtk.report.camscore import MARGIN_PIXELS
from medtk.report.gallery import Gallery
from medtk.report.html import Html, esc, fmt, img, join, not_run, note, percent, plain_url, section, signed, size, table, tag
from medtk.report.inputs import RunArtifacts
from medtk.report.sections import kv

WHERE = {
    "on-device": "measured on the device",
    "remote": "measured on the device over SSH",
    "host-estimate": "ESTIMATE: measured on this host, scaled to the device",
}


def compression_section(art: RunArtifacts) -> Html:
    report = art.compress
    if not report:
        return section("compression", "Compression", not_run("Compression (compress.json)", "medtk compress RUN --int8"))
    rows = []
    for entry in report.get("variants", []):
        test, cam = entry.get("test") or {}, entry.get("cam_agreement") or {}
        status = entry.get("status", "n/a")
        rows.append([
            entry.get("name", "?"), tag("span", status, cls="ok" if status == "passed" else "bad"),
            size(entry.get("size_bytes")), size(entry.get("gzip_bytes")), fmt(entry.get("sparsity"), 2),
            fmt(test.get("auc"), 4), signed(entry.get("delta_auc")), fmt(test.get("accuracy"), 4),
            fmt(cam.get("correlation"), 3), percent(cam.get("peak_match")),
        ])
    reference = report.get("reference") or {}
    gate = report.get("gate") or {}
    parts = [
        table(["variant", "status", "size", "gzip", "sparsity", "test AUC", "AUC vs float32", "accuracy",
               "CAM r", "same CAM peak"], rows),
        note(f"Every number measured through medtk.runtime on {reference.get('test_images', 'n/a')} test images; deltas are "
             f"against the float32 TFLite file (its test AUC {fmt((reference.get('test') or {}).get('auc'), 4)}). "
             "CAM r: mean per-image Pearson correlation with the float32 CAM; same CAM peak: share of images whose "
             "peak cell matches the float32 one."),
    ]
    if gate:
        parts.append(tag("p", Html(
            f"Quality gate (test AUC at most {esc(fmt(gate.get('max_auc_drop')))} below float32): "
            + (str(tag("span", "passed", cls="ok")) if gate.get("passed") else str(tag("span", "FAILED", cls="bad")))
        )))
        if gate.get("failures"):
            parts.append(tag("ul", join(tag("li", f) for f in gate["failures"]), cls="plain"))
    extra = report.get("compression") or {}
    if extra.get("target_sparsity") is not None:
        parts.append(note(f"Pruning target sparsity {fmt(extra.get('target_sparsity'), 2)}, reached "
                          f"{fmt(extra.get('sparsity_after_pruning'), 3)}; after QAT {fmt(extra.get('sparsity_after_qat'), 3)}."))
    if report.get("note"):
        parts.append(note(f"Note: {report['note']}."))
    return section("compression", "Compression", *parts)


def latency_section(art: RunArtifacts) -> Html:
    if not art.bench:
        return section("latency", "Latency", not_run("Latency (bench.json)", "medtk bench RUN/export/*.tflite --json RUN/bench.json"))
    rows, estimates = [], []
    for name, report in art.bench:
        for result in report.get("results", []):
            where = result.get("where") or {}
            bare, e2e, estimate = result.get("bare") or {}, result.get("end_to_end") or {}, result.get("estimate")
            mode = where.get("mode", "?")
            device = where.get("device") or report.get("device") or where.get("detected_profile") or "unprofiled host"
            rows.append([
                device, result.get("variant", "?"), WHERE.get(mode, mode),
                fmt(bare.get("p50_ms"), 2), fmt(bare.get("p90_ms"), 2), fmt(e2e.get("p50_ms"), 2),
                "-" if not estimate else f"{estimate.get('estimated_ms', 0):.1f}",
                result.get("threads", "?"), f"{result.get('rss_peak_mb', 0):.0f}",
            ])
            if estimate:
                estimates.append(estimate)
    parts = [
        table(["device profile", "variant", "where", "p50 ms", "p90 ms", "end-to-end p50 ms", "device est. ms",
               "threads", "peak RSS MB"], rows),
        note("p50/p90: bare interpreter invoke; end-to-end: decode + preprocess + invoke + CAM for one image "
             "(Classifier.predict). Host numbers on a shared machine are noisy; compare variants measured together."),
    ]
    for estimate in _unique(estimates):
        ref = estimate.get("reference") or {}
        parts.append(note(
            f"Estimate for {estimate.get('device')}: method {estimate.get('method')} ({estimate.get('method_text', '')}). "
            f"Reference: {ref.get('model')} {ref.get('input_size')} {ref.get('precision')} at {ref.get('latency_ms')} ms; "
            f"source: {plain_url(str(estimate.get('reference_source', 'n/a')))}."
            + (" Approximate (reference of another precision or derived)." if estimate.get("approximate") else "")
        ))
    backends = sorted({str(r.get("backend")) for _, rep in art.bench for r in rep.get("results", []) if r.get("backend")})
    parts.append(note(f"Runtime backend: {', '.join(backends) or 'n/a'}; files: {', '.join(name for name, _ in art.bench)}."))
    return section("latency", "Latency", *parts)


def _unique(estimates: list[dict]) -> list[dict]:
    seen, result = set(), []
    for estimate in estimates:
        key = (estimate.get("device"), (estimate.get("reference") or {}).get("model"), (estimate.get("reference") or {}).get("precision"))
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
    config, data, training = art.config or {}, art.data or {}, art.training or {}
    model = config.get("model", {})
    test = (art.metrics or {}).get("test") or {}
    source = art.data_source or "n/a"
    versions = training.get("versions") or {}
    from medtk import __version__

    limitations = [
        "Not a medical device; not validated clinically. Research and engineering evaluation only.",
    ]
    if str(source).startswith("synthetic"):
        limitations.append("Trained and tested on synthetic phantoms, not patient images: the numbers say nothing about clinical performance.")
    if model.get("weights") == "none":
        limitations.append("Trained from scratch (no pretrained weights): expect lower accuracy than transfer learning.")
    shapes = list(((data.get("images") or {}).get("shapes") or {}).keys())
    if shapes and model.get("input_size"):
        limitations.append(f"Source images are {', '.join(shapes)} px, resized to {model['input_size']} x {model['input_size']}: "
                           "resizing adds no detail that the source does not have.")
    if gallery is not None:
        h, w = gallery.cam_grid
        limitations.append(f"CAM resolution is {h} x {w} cells: it shows a region, not a lesion boundary.")
    if test.get("n"):
        limitations.append(f"Test metrics come from {test['n']} images of the same source; other scanners, sites and populations "
                           "can differ. Check on local data before any use.")
    limitations.append("The class decision is the highest probability (threshold 0.5 for two classes); no threshold was tuned.")
    backend = gallery.backend if gallery else next(
        (r.get("backend") for _, rep in art.bench for r in rep.get("results", []) if r.get("backend")), None)
    facts = [
        ("intended use", intended_use or "Research and engineering evaluation; decision support only, not a diagnostic device."),
        ("data source", source),
        ("classes", ", ".join(art.class_names) or "n/a"),
        ("model", f"{model.get('arch', 'n/a')}, input {model.get('input_size', '?')} px x {model.get('channels', '?')} channel(s)"),
        ("test metrics (float)", ", ".join(f"{k} {fmt(test.get(k), 4)}" for k in ("auc", "accuracy", "sensitivity", "specificity")) if test else "n/a"),
        ("versions", f"medtk {versions.get('medtk', __version__)} (report by {__version__}), TensorFlow "
                     f"{versions.get('tensorflow', 'n/a')}, Python {versions.get('python', 'n/a')}, runtime backend {backend or 'n/a'}"),
    ]
    return section("model-card", "Model card", kv(facts), tag("h3", "Limitations"),
                   tag("ul", join(tag("li", text) for text in limitations), cls="plain"))
