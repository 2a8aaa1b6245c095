"""`CellGeometry`: where the cells of a feature map (a CAM, a Grad-CAM layer) sit on the model's input.

A strided network's cell i is centred on input pixel `origin + stride * i`, the centre of its receptive
field, not where an even grid over the image would put it: Keras' ResNet50 has origin 0, so drawing its
maps as an even grid (a plain resize) puts every map half a cell down and right of where the model
looked (15.5 px at 224 px and stride 32; 7.5 px of 96 at stride 16). The training side computes the
geometry from the Keras graph (train/cam_geometry.py) and the export records it in the model's
metadata (`cam_geometry`); the runtime upsamples on it (`medtk.runtime.cam.upsample`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CellGeometry:
    """Where the cells of a feature map sit on the model's (square, `input_size`-pixel) input.

    Cell (i, j) is centred on input pixel (origin[0] + stride[0] * i, origin[1] + stride[1] * j), the
    centre of its receptive field (pixel centres at integers, 0 = the first row or column).
    """

    input_size: int
    stride: tuple[float, float]
    origin: tuple[float, float]

    @classmethod
    def from_dict(cls, data: dict) -> "CellGeometry":
        return cls(int(data["input_size"]), (float(data["stride"][0]), float(data["stride"][1])),
                   (float(data["origin"][0]), float(data["origin"][1])))

    def to_dict(self) -> dict:
        return {"input_size": self.input_size, "stride": list(self.stride), "origin": list(self.origin)}

    def cell_coordinates(self, pixels: int, axis: int) -> np.ndarray:
        """For each of `pixels` image rows (axis 0) or columns (1), its position in cell units.

        The image is resized onto the model's input without padding, so image pixel y lands on input
        coordinate (y + 0.5) * input_size / pixels - 0.5.
        """
        on_input = (np.arange(pixels, dtype=np.float64) + 0.5) * self.input_size / pixels - 0.5
        return (on_input - self.origin[axis]) / self.stride[axis]

    def nearest_cells(self, pixels: int, cells: int, axis: int) -> np.ndarray:
        """The cell each image row (or column) is nearest to: the cell that looked at it most directly."""
        return np.clip(np.rint(self.cell_coordinates(pixels, axis)), 0, cells - 1).astype(np.int64)
