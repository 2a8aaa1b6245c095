"""One result row per image, the same from every executor (local pool or Ray): the job's table schema.

Columns: `source_id`; `truth` (the source's label, null when unlabelled); `label` (decided at the
model's threshold; null on error); `positive` (binary models); `prob_<class>` per class in the model's
label order; `threshold`; `warnings` (how the input differs from the training data); `error` (the
one-line reason a file could not be used, else null); `model_sha256` and `variant` (which model made
the row). Probabilities are the runtime's float32 values, stored as float64 so nothing is rounded.
"""

from __future__ import annotations

from typing import Any

from medtk.batch.items import Item
from medtk.errors import MedtkError
from medtk.schema.batch import PROB_PREFIX, ModelInfo


def predict_row(classifier, item: Item, model: ModelInfo) -> dict[str, Any]:
    """The row of one item: its prediction, or its one-line error (a bad file is a row, never a crash)."""
    try:
        prediction = classifier.predict(item.load())
    except MedtkError as error:
        return error_row(item, model, f"{item.source_id}: {error}" if item.source_id not in str(error) else str(error))
    row = _base(item, model)
    row.update(label=prediction.label, positive=prediction.positive, threshold=prediction.threshold,
               warnings=list(prediction.warnings))
    row.update({PROB_PREFIX + label: float(p) for label, p in prediction.probabilities.items()})
    return row


def error_row(item: Item, model: ModelInfo, message: str) -> dict[str, Any]:
    row = _base(item, model)
    row["error"] = message
    return row


def _base(item: Item, model: ModelInfo) -> dict[str, Any]:
    row: dict[str, Any] = {name: None for name in model.columns()}
    row.update(source_id=item.source_id, truth=item.truth, warnings=[], model_sha256=model.sha256,
               variant=model.variant)
    return row


def arrow_schema(model: ModelInfo):
    """The Parquet schema of the job's rows (pyarrow: the `medtk[scale]` extra)."""
    import pyarrow as pa

    fields = [pa.field("source_id", pa.string(), nullable=False), pa.field("truth", pa.string()),
              pa.field("label", pa.string()), pa.field("positive", pa.bool_())]
    fields += [pa.field(name, pa.float64()) for name in model.prob_columns()]
    fields += [pa.field("threshold", pa.float64()), pa.field("warnings", pa.list_(pa.string())),
               pa.field("error", pa.string()), pa.field("model_sha256", pa.string()),
               pa.field("variant", pa.string())]
    return pa.schema(fields)
