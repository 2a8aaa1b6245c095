"""The burned-in text of the Secondary Capture: the finding (or why none), every warning and the notice.

The text goes in a black band above the picture, never over it, wrapped to the band's width, so all of
it is there at any source size: a 28x28 source used to show "pneum / AI - NC". The picture is scaled to
fit `max_side` and small ones are enlarged (nearest neighbour: their pixels stay visible as pixels) so
the band is at least MIN_WIDTH wide and its font readable. `layout` is what `compose` draws; the tests
check every line's box lies inside the picture.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from medtk.serve.assessment import Assessment

MIN_WIDTH = 512  # pixels: the narrowest band the text is wrapped into
FONT = cv2.FONT_HERSHEY_SIMPLEX
MARGIN = 4  # pixels around the text
WHITE = (255, 255, 255)


@dataclass(frozen=True)
class TextBox:
    """One drawn line: its text and the box it covers (top-left corner, size), in band pixels."""

    text: str
    x: int
    y: int
    width: int
    height: int
    baseline: int  # the y cv2.putText draws at


@dataclass(frozen=True)
class Layout:
    boxes: tuple[TextBox, ...]
    height: int  # of the band
    scale: float
    thickness: int


def caption_lines(assessment: Assessment, notice: str) -> list[str]:
    """The finding (or why none is issued), each warning, the notice: what the picture must say."""
    if assessment.label is None:
        head = f"NO FINDING ISSUED: {assessment.withheld}"
    else:
        head = f"{assessment.label}  p({assessment.scored_class})={assessment.probability:.3f}"
    return [head, *(f"WARNING: {warning}" for warning in assessment.warnings), f"AI - {notice}"]


def layout(lines: list[str], width: int) -> Layout:
    """Wrap `lines` into a band `width` pixels wide: a font sized by the width, words kept whole unless
    one alone is wider than the band."""
    scale = min(1.4, max(0.45, width / 1400))
    thickness = max(1, round(scale * 1.5))
    boxes, y = [], MARGIN
    for line in lines:
        for piece in _wrap(line, width - 2 * MARGIN, scale, thickness):
            (text_width, text_height), descent = _text_size(piece, scale, thickness)
            boxes.append(TextBox(piece, MARGIN, y, text_width, text_height + descent + thickness,
                                 y + text_height))
            y += text_height + descent + thickness + MARGIN
    return Layout(tuple(boxes), y, scale, thickness)


def compose(picture: np.ndarray, lines: list[str], max_side: int) -> np.ndarray:
    """An RGB uint8 image: the caption band over `picture` (H x W gray or RGB) fitted to `max_side`."""
    if picture.ndim == 2:
        picture = np.repeat(picture[:, :, None], 3, axis=2)
    height, width = picture.shape[:2]
    scale = min(max_side, max(MIN_WIDTH, max(height, width))) / max(height, width)
    if scale != 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        picture = cv2.resize(picture, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST)
    height, width = picture.shape[:2]
    band_width = max(width, MIN_WIDTH)
    text = layout(lines, band_width)
    canvas = np.zeros((text.height + height, band_width, 3), np.uint8)
    left = (band_width - width) // 2
    canvas[text.height:, left:left + width] = picture
    for box in text.boxes:
        cv2.putText(canvas, box.text, (box.x, box.baseline), FONT, text.scale, WHITE, text.thickness, cv2.LINE_AA)
    return canvas


@functools.lru_cache(maxsize=256)
def _wrap(line: str, room: int, scale: float, thickness: int) -> tuple[str, ...]:
    """Greedy word wrap by measured width; a word wider than `room` is cut where it must be. Cached: the
    notice and most warnings are the same line on every image, and measuring text is most of composing."""
    def fits(text: str) -> bool:
        return _text_size(text, scale, thickness)[0][0] <= room

    pieces, current = [], ""
    for word in line.split(" "):
        candidate = f"{current} {word}" if current else word
        if fits(candidate):
            current = candidate
            continue
        if current:
            pieces.append(current)
        while len(word) > 1 and not fits(word):
            cut = 1
            while cut < len(word) and fits(word[:cut + 1]):
                cut += 1
            pieces.append(word[:cut])
            word = word[cut:]
        current = word
    pieces.append(current)
    return tuple(pieces)


@functools.lru_cache(maxsize=1024)
def _text_size(text: str, scale: float, thickness: int) -> tuple[tuple[int, int], int]:
    """cv2.getTextSize: ((width, height), descent) of `text` in the caption's font."""
    return cv2.getTextSize(text, FONT, scale, thickness)
