"""A CSV manifest: header `path,label[,patient_id]`, paths relative to the CSV's folder.

With `patient_id`, splits keep each patient's images together. Every listed file must exist:
a manifest that names missing files is out of date, and training on the rest would hide that.
Class names are the distinct labels, sorted (numerically when all labels are integers).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from medtk.data.catalog import Catalog
from medtk.data.files import file_loader
from medtk.errors import DataError

REQUIRED = ("path", "label")
SHOWN = 3


def load_manifest(csv_path: Path, source: str | None = None) -> Catalog:
    csv_path = Path(csv_path)
    rows, has_patients = _read_rows(csv_path)
    root = csv_path.parent
    ids, names, patients, seen = [], [], [], {}
    for line, row in rows:
        item, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
        if not item or not label:
            raise DataError(f"{csv_path}:{line}: empty {'path' if not item else 'label'}")
        if item in seen:
            raise DataError(f"{csv_path}:{line}: {item} is listed twice (first on line {seen[item]})")
        seen[item] = line
        patient = (row.get("patient_id") or "").strip() if has_patients else ""
        if has_patients and not patient:
            raise DataError(f"{csv_path}:{line}: empty patient_id for {item}")
        ids.append(item)
        names.append(label)
        patients.append(patient)
    if not ids:
        raise DataError(f"{csv_path}: the manifest lists no images")
    files = [root / item for item in ids]
    missing = [item for item, path in zip(ids, files) if not path.is_file()]
    if missing:
        raise DataError(f"{csv_path}: {len(missing)} listed files do not exist (relative to {root}): "
                        f"{', '.join(missing[:SHOWN])}{' ...' if len(missing) > SHOWN else ''}")
    class_names = _class_order(set(names))
    return Catalog(
        source=source or str(csv_path),
        class_names=class_names,
        ids=ids,
        labels=np.array([class_names.index(name) for name in names], dtype=np.int64),
        load=file_loader(files),
        patient_ids=patients if has_patients else None,
        files=files,
    )


def _read_rows(csv_path: Path) -> tuple[list[tuple[int, dict]], bool]:
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: no such manifest file")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [name.strip() for name in reader.fieldnames or []]
            reader.fieldnames = columns
            missing = [name for name in REQUIRED if name not in columns]
            if missing:
                raise DataError(f"{csv_path}: missing column(s) {', '.join(missing)}; expected a header row "
                                f"path,label[,patient_id], found {','.join(columns) or 'nothing'}")
            return [(reader.line_num, row) for row in reader], "patient_id" in columns
    except (UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{csv_path}: not a readable CSV file ({error})") from None


def _class_order(names: set[str]) -> tuple[str, ...]:
    if all(name.lstrip("-").isdigit() for name in names):
        return tuple(sorted(names, key=int))
    return tuple(sorted(names))
