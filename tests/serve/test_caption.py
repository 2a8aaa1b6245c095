"""The Secondary Capture's burned-in text is all there, inside the picture, at any source size."""

from __future__ import annotations

import numpy as np
import pytest

from medtk.serve.assessment import Assessment, withheld
from medtk.serve.caption import MIN_WIDTH, caption_lines, compose, layout
from medtk.serve.sr import NOTICE

WARNED = Assessment(label="pneumonia", scored_class="pneumonia", probability=0.997, threshold=0.4,
                    warnings=("input is 16-bit; the model was trained on 8-bit images",
                              "input is PALETTE COLOR; the model was trained on MONOCHROME2 images"))
WITHHELD = withheld("input modality is CT; the model was trained on CR/DX images only",
                    ("input modality is CT; the model was trained on CR/DX", "x" * 400))  # one unbreakable word
SIZES = [(8, 8), (28, 28), (64, 64), (512, 512), (4096, 4096), (8, 4096), (4096, 8), (1, 3000), (3000, 17),
         (333, 1999)]


@pytest.mark.parametrize("assessment", [WARNED, WITHHELD], ids=["finding", "withheld"])
@pytest.mark.parametrize("height,width", SIZES)
def test_every_line_is_inside_the_picture_at_any_size(assessment, height, width):
    lines = caption_lines(assessment, NOTICE)
    picture = np.full((height, width), 128, np.uint8)
    out = compose(picture, lines, 2048)
    assert out.dtype == np.uint8 and out.shape[2] == 3
    assert out.shape[1] >= MIN_WIDTH and max(out.shape[:2]) <= 2048 + layout(lines, out.shape[1]).height
    text = layout(lines, out.shape[1])
    inside = np.zeros(out.shape[:2], bool)
    for box in text.boxes:
        assert 0 <= box.x and box.x + box.width <= out.shape[1] and 0 <= box.y and box.y + box.height <= text.height
        inside[box.y:box.y + box.height, box.x:box.x + box.width] = True
    drawn = out[:text.height].max(axis=2) > 0
    assert drawn.any() and not (drawn & ~inside[:text.height]).any()  # every lit pixel is in a line's box
    # nothing is lost to wrapping: the boxes hold every character of every line, in order
    assert "".join(box.text.replace(" ", "") for box in text.boxes) == "".join(lines).replace(" ", "")
    assert (out[text.height:].max(axis=2) > 0).any()  # the picture is below the band, not under it


def test_the_caption_says_the_finding_or_why_there_is_none():
    assert caption_lines(WARNED, NOTICE) == [
        "pneumonia  p(pneumonia)=0.997", "WARNING: input is 16-bit; the model was trained on 8-bit images",
        "WARNING: input is PALETTE COLOR; the model was trained on MONOCHROME2 images", "AI - NOT FOR DIAGNOSTIC USE"]
    lines = caption_lines(WITHHELD, NOTICE)
    assert lines[0] == "NO FINDING ISSUED: input modality is CT; the model was trained on CR/DX images only"
    assert not any("p(" in line for line in lines)


def test_small_sources_are_enlarged_and_large_ones_fitted():
    lines = caption_lines(WARNED, NOTICE)
    small = compose(np.zeros((28, 28), np.uint8), lines, 2048)
    band = layout(lines, small.shape[1]).height
    assert small.shape[:2] == (band + MIN_WIDTH, MIN_WIDTH)
    large = compose(np.zeros((4096, 3000, 3), np.uint8), lines, 2048)
    assert large.shape == (layout(lines, 1500).height + 2048, 1500, 3)
