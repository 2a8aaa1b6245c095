from __future__ import annotations

import json

import numpy as np
from tests.data.datafiles import random_image, write_image

from medtk.data import describe, load_dataset


def test_describe_is_json_with_counts_and_no_patient_ids(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["path,label,patient_id"]
    for i in range(30):
        write_image(tmp_path / f"{i}.png", random_image(rng, shape=(10, 12)))
        lines.append(f"{i}.png,{'sick' if i % 3 else 'well'},SECRET-PATIENT-{i // 3}")
    (tmp_path / "bad.png").write_bytes(b"junk")
    lines.append("bad.png,sick,SECRET-PATIENT-99")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    dataset = load_dataset(str(tmp_path / "m.csv"), max_bad_fraction=0.1)
    summary = describe(dataset).to_json()
    text = json.dumps(summary)
    assert "SECRET-PATIENT" not in text
    assert summary["classes"] == ["sick", "well"]
    assert summary["split_origin"] == "grouped"
    assert sum(summary["sizes"].values()) == 30
    assert sum(summary["patients"].values()) == 10
    assert summary["skipped"] == [{"item": "bad.png", "reason": "not a readable image (not a PNG, JPEG, TIFF, BMP or DICOM file)"}]
    assert summary["images"] == {"dtype": "uint8", "shapes": {"10x12": 30}}
    assert summary["counts"]["train"]["sick"] + summary["counts"]["val"]["sick"] + summary["counts"]["test"]["sick"] == 20
