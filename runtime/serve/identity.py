"""`ModelIdentity`: what results say about the algorithm that made them (name, version, checksums, rule)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from medtk.runtime.metadata import ModelMetadata


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
    def from_model(cls, path: Path, metadata: ModelMetadata) -> "ModelIdentity":
        data = Path(path).read_bytes()
        weights = metadata.weights_sha256
        if not weights:
            from medtk.runtime.metadata import weights_sha256

            weights = weights_sha256(data)
        point = metadata.operating_point
        name = str(metadata.provenance.get("name") or Path(path).stem)
        return cls(
            name=name,
            version=str(metadata.model_version),
            variant=metadata.variant,
            weights_sha256=weights,
            file_sha256=hashlib.sha256(data).hexdigest(),
            labels=tuple(metadata.labels),
            positive_class=metadata.positive_class if metadata.positive_index is not None else None,
            rule=point.rule if point is not None else None,
            threshold=point.threshold if point is not None else None,
        )

    def scored_class(self, label: str) -> str:
        """The class whose probability the report records: the positive class if any, else the label."""
        return self.positive_class or label
