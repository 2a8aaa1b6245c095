"""Report sections about the data, the training and the float model's evaluation."""

from __future__ import annotations

from pathlib import Path

from medtk.errors import MedtkError
from medtk.report.html import Html, esc, fmt, img, join, not_run, note, section, table, tag
from medtk.report.images import array_uri, file_uri, fit_within
from medtk.report.inputs import RunArtifacts
from medtk.schema.metrics import Calibration

SAMPLES_PER_CLASS = 4
SAMPLE_PIXELS = 128
SKIPPED_SHOWN = 20


def kv(rows: list[tuple[str, object]]) -> Html:
    return tag("table", join(tag("tr", tag("th", k) + tag("td", v)) for k, v in rows), cls="kv")


def data_section(art: RunArtifacts, dataset, data_error: str | None) -> Html:
    data = art.data
    if data is None:
        return section("data", "Data", not_run("Data summary (data.json)", "medtk train"))
    classes = list(data.classes)
    counts = data.counts
    rows = []
    for split in ("train", "val", "test"):
        if split in counts:
            per_class = [counts[split].get(c, 0) for c in classes]
            rows.append([split, *per_class, sum(per_class)])
    totals = [sum(r[i + 1] for r in rows) for i in range(len(classes))]
    rows.append([Html("<strong>all</strong>"), *totals, sum(totals)])
    shapes = data.images.shapes
    facts = [
        ("source", data.source),
        ("classes", ", ".join(classes)),
        ("split", {"given": "the source's own split", "stratified": "stratified by class (medtk)",
                   "grouped": "grouped by patient, stratified by class (medtk)", "file": "from split.csv"}
         .get(data.split_origin, data.split_origin)),
        ("image sizes", ", ".join(f"{shape} px ({n})" for shape, n in shapes.items()) or "n/a"),
    ]
    if data.patients:
        facts.append(("patients per split", ", ".join(f"{k} {v}" for k, v in data.patients.items())))
    parts = [kv(facts), table(["split", *classes, "total"], rows)]
    skipped = data.skipped
    if skipped:
        items = join(tag("li", Html(f"<code>{esc(s.item)}</code>: {esc(s.reason)}")) for s in skipped[:SKIPPED_SHOWN])
        more = f" ({len(skipped) - SKIPPED_SHOWN} more in data.json)" if len(skipped) > SKIPPED_SHOWN else ""
        parts.append(tag("h3", f"Skipped files: {len(skipped)}{more}") + tag("ul", items, cls="plain"))
    else:
        parts.append(note("Skipped files: none (every file decoded)."))
    parts.append(tag("h3", "Sample training images"))
    parts.append(_samples(dataset, classes) if dataset is not None else tag("p", f"Data not available: {data_error}", cls="missing"))
    return section("data", "Data", *parts)


def _samples(dataset, classes: list[str]) -> Html:
    import numpy as np

    split = dataset.splits["train"]
    blocks = []
    for index, name in enumerate(classes):
        items = [int(i) for i in np.flatnonzero(np.asarray(split.labels) == index)[:SAMPLES_PER_CLASS]]
        pictures = join(img(array_uri(fit_within(split.load(i), SAMPLE_PIXELS)), f"{name}: {split.ids[i]}") for i in items)
        blocks.append(tag("div", tag("div", f"{name}", cls="cls") + pictures))
    return tag("div", join(blocks), cls="samples") + note(
        "Pixels only, at the source's resolution (shown enlarged, unsmoothed). No DICOM header field is read into this report."
    )


def training_section(art: RunArtifacts, workdir: Path) -> Html:
    from medtk.train.plots import history_plot

    facts = []
    if art.config is not None:
        model, train = art.config.model, art.config.train
        facts += [
            ("backbone", model.arch),
            ("input", f"{model.input_size} x {model.input_size} x {model.channels}"),
            ("initial weights", "none (trained from scratch)" if model.weights == "none" else model.weights),
            ("epochs (fine-tune / head)", f"{_epochs(train.epochs, train.min_steps)} / {_head_epochs(train.head_epochs)}"),
            ("batch size, learning rate", f"{train.batch_size}, {train.learning_rate}"),
            ("augmentation", "on" if art.config.augment.enabled else "off"),
        ]
    summary = art.training
    if summary is not None:
        placement = summary.placement
        where = (f"{placement.strategy} on {', '.join(placement.devices) or '?'}, {placement.mixed_precision}"
                 if placement else "n/a")
        facts += [
            ("epochs run", summary.epochs_run),
            ("best validation AUC", fmt(summary.best_val_auc, 4)),
            ("training time", f"{summary.seconds / 60:.1f} min"),
            ("placement", where),
        ]
    plot = workdir / "history.png"
    curves = (
        tag("figure", img(file_uri(plot), "training curves: loss and AUC per epoch")
            + tag("figcaption", "Loss and AUC per epoch, training (solid) and validation (dashed)."))
        if history_plot(art.run.history_file, plot) else not_run("Training history (history.csv)", "medtk train")
    )
    return section("training", "Training", kv(facts), curves)


def _epochs(value: int, min_steps: int) -> str:
    return f"auto (at least 20, more to reach {min_steps} optimizer steps)" if value == -1 else str(value)


def _head_epochs(value: int) -> str:
    return "auto (3 with pretrained weights, 0 from scratch)" if value == -1 else str(value)


def evaluation_section(art: RunArtifacts) -> Html:
    metrics = art.metrics
    if metrics is None:
        return section("evaluation", "Evaluation (float model)", not_run("Evaluation (metrics.json)", "medtk eval RUN"))
    rows = []
    for split in ("val", "test"):
        m = metrics.split(split)
        if m is not None:
            rows.append([split, m.n, *(fmt(v, 4) for v in (m.auc, m.accuracy, m.sensitivity, m.specificity, m.f1))])
    parts = [table(["split", "images", "AUC", "accuracy (argmax)", "sensitivity", "specificity", "F1"], rows)]
    test = metrics.test
    if test is not None and test.operating_point is not None:
        parts.append(_operating_point(test, art))
    elif test is not None and test.positive_class is None:
        parts.append(note("Multi-class task: the decision is the highest probability (argmax); sensitivity and "
                          "specificity are macro averages over classes."))
    if test is not None and test.calibration is not None:
        parts.append(note("Calibration: " + describe_calibration(test.calibration)))
    figures = []
    for name, caption in (("roc_test", "ROC curve, test split"), ("confusion_test", "Confusion matrix, test split"),
                          ("reliability_test", "Reliability diagram, test split (before and after calibration)"),
                          ("roc_val", "ROC curve, validation split"), ("confusion_val", "Confusion matrix, validation split")):
        path = art.run.plots / f"{name}.png"
        if path.is_file():
            try:
                figures.append(tag("figure", img(file_uri(path), caption) + tag("figcaption", caption)))
            except MedtkError:
                figures.append(tag("p", f"{path.name}: not a PNG file", cls="missing"))
    parts.append(tag("div", join(figures), cls="figs") if figures else not_run("ROC and confusion plots", "medtk eval RUN"))
    return section("evaluation", "Evaluation (float model)", *parts)


def _operating_point(test, art: RunArtifacts) -> Html:
    """The decision a clinician gets: the finding class, the rule, the threshold and what it gives on test."""
    point, ci = test.operating_point, test.ci

    def with_ci(value, pair) -> str:
        return fmt(value, 3) + ("" if pair is None else f" ({fmt(pair[0], 3)}-{fmt(pair[1], 3)})")

    val = art.metrics.val.operating_point if art.metrics.val else None
    rows = [
        ["AUC (threshold-free)", with_ci(test.auc, ci.auc if ci else None)],
        ["sensitivity", with_ci(point.sensitivity, ci.sensitivity if ci else None)],
        ["specificity", with_ci(point.specificity, ci.specificity if ci else None)],
        ["PPV", with_ci(point.ppv, ci.ppv if ci else None)],
        ["NPV", with_ci(point.npv, ci.npv if ci else None)],
        ["at argmax (0.5): sensitivity / specificity", f"{fmt(test.sensitivity_argmax, 3)} / {fmt(test.specificity_argmax, 3)}"],
    ]
    unmet = f" Not met on validation: {val.note}" if val is not None and val.met is False else ""
    return tag("h3", "Operating point") + note(
        f"Positive class (the finding every sensitivity, specificity, PPV and NPV is about): {test.positive_class}. "
        f"Rule {point.rule}, threshold {point.threshold:.4f} on its probability, chosen on the validation split "
        f"(never on test); the device applies the same threshold (it travels in the model's metadata).{unmet}"
    ) + table(["test split at the operating point", "value (95% CI, stratified bootstrap)"], rows)


def describe_calibration(c: Calibration) -> str:
    """What the deployed probabilities carry: the temperature applied or why none, with the test evidence."""
    if not c.applied:
        return f"{c.reason or 'not applied'}. Test ECE (15 bins) {c.ece_before:.4f}, Brier {c.brier_before:.4f}."
    return (f"temperature {c.temperature:.3f} fitted on validation by negative log-likelihood and folded into the "
            f"model (probabilities change, rankings and CAM shapes do not){': ' + c.reason if c.reason else ''}. "
            f"Test ECE (15 bins) {c.ece_before:.4f} before, {c.ece_after:.4f} after; Brier {c.brier_before:.4f} "
            f"before, {c.brier_after:.4f} after.")
