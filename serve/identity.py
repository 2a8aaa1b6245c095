"""`ModelIdentity`: what results say about the algorithm that made them (name, version, checksums, rule)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medtk.runtime import Classifier


@dataclass(frozen=True)
class ModelIdentity:
    name: str  # the model file's stem unless the metadata's provenance names it
    version: str  # metadata model_version
    variant: str
    weights_sha256: str  # the weights' checksum recorded at export (the runtime checked it on load)
    file_sha256: str  # the whole file, metadata included: results' UIDs derive from it
    labels: tuple[str, ...]
    positive_class: str | None
    rule: str | None  # operating point rule, None = argmax
    threshold: float | None

    @classmethod
    def of(cls, classifier: "Classifier") -> "ModelIdentity":
        """The identity of the bytes `classifier` verified and runs (never a second read of the file)."""
        metadata = classifier.metadata
        point = metadata.operating_point
        return cls(
            name=str(metadata.provenance.get("name") or classifier.model_path.stem),
            version=str(metadata.model_version),
            variant=metadata.variant,
            weights_sha256=classifier.weights_sha256,
            file_sha256=classifier.file_sha256,
            labels=tuple(metadata.labels),
            positive_class=metadata.positive_class if metadata.positive_index is not None else None,
            rule=point.rule if point is not None else None,
            threshold=point.threshold if point is not None else None,
        )

    def scored_class(self, label: str) -> str:
        """The class whose probability the report records: the positive class if any, else the label."""
        return self.positive_class or label
