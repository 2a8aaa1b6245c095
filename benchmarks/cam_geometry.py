"""Localisation of a run's maps drawn as an even grid against drawn on their cells' geometry (issue 13).

    .venv/bin/python benchmarks/cam_geometry.py RUN [RUN ...]

For the CAM and Grad-CAM on the conv4 layer of each run's Keras model, scores the test lesions exactly
like `medtk explain --localization` (`medtk.train.explain.scoring.score_maps`) twice: with cell i taken as an
even grid's (centred at stride * i + (stride - 1) / 2, how medtk drew every map before) and on the
geometry `medtk.train.cam_geometry` reads from the graph (ResNet50: stride * i). Also prints the mean
offset, in cells, from each single-lesion image's lesion centroid to its CAM's peak cell under either
reading: a map that looks where its receptive fields are centred has none.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(runs: list[str]) -> int:
    from cam_centring import lesion_batch
    from medtk.train.explain.scoring import score_maps
    from medtk.train.cam_geometry import cell_geometry
    from medtk.train.explain.maps import explain, finer_layer

    for folder in runs:
        model, data, batch = lesion_batch(folder)
        for method, layer in (("cam", None), ("gradcam", finer_layer(model))):
            result = explain(model, batch, method, layer, class_index=data.lesion_class)
            geometry = cell_geometry(model, result.layer)
            for reading, used in (("even grid", None), ("geometry", geometry)):
                scored = score_maps(list(result.maps), data.masks, geometry=used)
                print(f"{folder}: {method}@{result.layer} {reading:9s} pointing game {scored.scores.pointing_game:.3f} "
                      f"(chance {scored.chance.pointing_game:.3f}), energy {scored.scores.energy:.3f}, "
                      f"IoU {scored.scores.iou:.3f}, {scored.images} lesions")
            print(f"{folder}: {method}@{result.layer} geometry {geometry}; peak - lesion centroid, in cells: "
                  f"even grid {_offset(result.maps, data.masks, None)}, "
                  f"geometry {_offset(result.maps, data.masks, geometry)}")
    return 0


def _offset(maps, masks, geometry) -> str:
    """Mean (rows, columns) offset of the peak cell's centre from the lesion centroid, +- its standard error."""
    from scipy import ndimage

    from medtk.train.explain.scoring import peak_cell

    offsets = []
    for cells, mask in zip(maps, masks):
        if ndimage.label(mask)[1] != 1:
            continue
        peak = peak_cell(cells)
        if peak is None:
            continue
        rows, columns = np.nonzero(mask)
        centroid = []
        for axis, values in ((0, rows), (1, columns)):
            if geometry is None:  # even grid: pixel y lies at (y + 0.5) * h / H - 0.5 cells
                centroid.append(((values.mean() + 0.5) * cells.shape[axis] / mask.shape[axis]) - 0.5)
            else:
                centroid.append(geometry.cell_coordinates(mask.shape[axis], axis)[values].mean())
        offsets.append((peak[0] - centroid[0], peak[1] - centroid[1]))
    offsets = np.asarray(offsets)
    mean, error = offsets.mean(axis=0), offsets.std(axis=0) / np.sqrt(len(offsets))
    return f"({mean[0]:+.2f} +- {error[0]:.2f}, {mean[1]:+.2f} +- {error[1]:.2f}) over {len(offsets)}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
