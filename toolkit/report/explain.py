"""The report's "Explanations" section: localisation scores (RUN/localization.json) and example panels.

Read through `medtk.run.Run` only (no TensorFlow): `medtk explain RUN --localization` writes both the
document and the panels (RUN/explain/localization/*.png) it lists.
"""

from __future__ import annotations

from medtk.errors import MedtkError
from medtk.report.html import Html, esc, img, join, not_run, note, section, table, tag
from medtk.report.images import file_uri
from medtk.report.inputs import RunArtifacts

ANCHOR = "explanations"
TITLE = "Explanations"


def explanations_section(art: RunArtifacts) -> Html:
    try:
        report = art.run.localization()
    except MedtkError as error:
        return section(ANCHOR, TITLE, tag("p", f"localization.json: {error}", cls="missing"))
    if report is None:
        return section(ANCHOR, TITLE, not_run("Localisation of explanations (localization.json)",
                                              "medtk explain RUN --localization"))
    rows = []
    for entry in report.scores:
        rows.append([
            _label(entry), f"{entry.grid[0]} x {entry.grid[1]}", entry.images,
            _against(entry.pointing_game, entry.chance.pointing_game),
            _against(entry.energy, entry.chance.energy), _against(entry.iou, entry.chance.iou),
        ])
    parts = [
        tag("p", f"{report.images} {report.split} images with a lesion mask; the {report.lesion_class} class's map; "
                 f"model input {report.input_size} px at output stride {report.output_stride}."),
        table(["map", "grid", "images", "pointing game (chance)", "energy in lesion (chance)", "IoU (chance)"], rows),
        note(Html(
            "<strong>Pointing game</strong>: the map's peak cell overlaps the lesion (dilated by "
            f"{esc(report.margin_pixels)} px). <strong>Energy</strong>: share of the [0, 1] map (as the device shows "
            f"it) inside the lesion. <strong>IoU</strong>: the map at &ge; {esc(report.iou_threshold)} of its range "
            "against the lesion. <strong>Chance</strong>: the same map with its cells shuffled "
            f"({esc(report.chance_permutations)} shuffles; the pointing game's is exact), so a coarse grid's easy "
            "hits are visible. CAM rows are the model's own output (exact); Grad-CAM rows explain the named layer; "
            "<em>export</em> rows are the deployed files run through medtk.runtime."
        )),
    ]
    pictures = []
    for relative in report.examples:
        path = art.run.root / relative
        try:
            pictures.append(tag("figure", img(file_uri(path), f"explanations of {relative}")))
        except (OSError, MedtkError):
            pictures.append(tag("p", f"{relative}: missing or not a PNG", cls="missing"))
    if pictures:
        parts.append(tag("h3", "Examples (lesion outlined in magenta)"))
        parts.append(tag("div", join(pictures), cls="figs"))
    return section(ANCHOR, TITLE, *parts)


def _label(entry) -> str:
    if entry.kind == "export":
        return f"{entry.variant} (exported, CAM)"
    if entry.method == "cam":
        return "CAM (Keras model)"
    return f"{'Grad-CAM++' if entry.method == 'gradcam++' else 'Grad-CAM'} on {entry.layer}"


def _against(value: float, chance: float) -> str:
    return f"{value:.3f} ({chance:.3f})"
