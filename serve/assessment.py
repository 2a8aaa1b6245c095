"""What the node says about one image: the finding it issues, or why it issues none, and every warning.

The runtime predicts; this decides what of that reaches the record (the SR, the SC, the HTTP answer), so
all three say the same thing:

- Every warning the runtime raises (`Prediction.warnings`: bit depth, photometric interpretation,
  modality, an old intensity mapping) is carried, as text a viewer shows.
- An image whose Modality is not among the modalities the model was trained on (its metadata's
  `intensity.modalities`) gets **no finding and no probability**: a chest X-ray model's "pneumonia,
  p=0.997" on a CT is not a finding about that CT, and a number in the record would be read as one.
  The model does not even run on it. The result says the finding was withheld and why.
- A different bit depth or photometric interpretation only warns: the same examination is encoded
  differently (real CR is 12-16 bit while many models train on 8-bit PNGs), and the intensity mapping
  is there to make those the pixels training saw.
- A model that records no modalities cannot be checked: its results say so for every image whose
  modality is known, instead of passing silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medtk.serve.identity import ModelIdentity

MAX_NOTE_CHARACTERS = 512  # a note longer than this is cut (the runtime's are far shorter)


@dataclass(frozen=True)
class Assessment:
    """One image's result as the record shows it. `label` is None when the finding is withheld."""

    label: str | None
    scored_class: str | None  # the class whose probability is recorded
    probability: float | None
    threshold: float | None
    warnings: tuple[str, ...] = ()
    withheld: str | None = None  # why no finding was issued

    @property
    def notes(self) -> tuple[str, ...]:
        """Every sentence a reader must see beside (or instead of) the finding, in order."""
        head = (f"No finding issued: {self.withheld}",) if self.withheld else ()
        return head + self.warnings


def modality_withheld(modality: str, trained: tuple[str, ...]) -> str | None:
    """Why no finding may be issued for an image of `modality`, or None when it may."""
    if not trained or not modality or modality in trained:
        return None
    return f"input modality is {plain(modality)}; the model was trained on {'/'.join(trained)} images only"


def unchecked_modality(modality: str, trained: tuple[str, ...]) -> tuple[str, ...]:
    """The warning for an image whose modality a model without recorded modalities cannot check."""
    if trained or not modality:
        return ()
    return (f"the model does not record which modalities it was trained on: this {plain(modality)} image "
            f"could not be checked against them",)


def assess(prediction: Any, model: ModelIdentity, modality: str, trained: tuple[str, ...]) -> Assessment:
    """The result of an image the model ran on (`modality_withheld` found no reason to withhold)."""
    scored = model.scored_class(prediction.label)
    return Assessment(label=prediction.label, scored_class=scored,
                      probability=float(prediction.probabilities[scored]), threshold=prediction.threshold,
                      warnings=tuple(plain(w) for w in prediction.warnings) + unchecked_modality(modality, trained))


def withheld(reason: str, warnings: tuple[str, ...]) -> Assessment:
    """The result of an image the model must not judge: no label, no probability, the reason."""
    return Assessment(label=None, scored_class=None, probability=None, threshold=None,
                      warnings=tuple(plain(w) for w in warnings), withheld=reason)


def plain(text: str) -> str:
    """Printable ASCII, at most MAX_NOTE_CHARACTERS: notes may quote a header value (a Modality) and go
    into every character set a result is encoded in and onto the burned-in picture."""
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in str(text))
    return cleaned if len(cleaned) <= MAX_NOTE_CHARACTERS else cleaned[:MAX_NOTE_CHARACTERS - 3] + "..."
