"""CAM agreement of every exported variant of finished runs with their float32 file, on the test split.

    .venv/bin/python benchmarks/cam_peak_shift.py RUN [RUN...]

The numbers `medtk compress` gates on (compress/evaluate.py: mean CAM correlation, same peak cell,
peak within one cell, mean peak shift in cells), measured again through the interpreter for runs
exported before compress.json recorded the shift. Prints a markdown table.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]


def main(runs: list[str]) -> int:
    from medtk.compress.evaluate import cam_agreement, run_model
    from medtk.run import Run
    from medtk.runtime import Classifier
    from medtk.train.pipeline import prepare_split

    print("| run | variant | CAM r | same peak | peak within one cell | mean peak shift (cells) |")
    print("|---|---|---|---|---|---|")
    for folder in map(Path, runs):
        reference_path = folder / "export" / "float32.tflite"
        reference_model = Classifier(reference_path)
        images = prepare_split(Run(folder).dataset().splits["test"], reference_model.input_size,
                               reference_model.channels)
        reference = run_model(reference_path, images)
        for path in sorted((folder / "export").glob("*.tflite")):
            if path == reference_path:
                continue
            agreement = cam_agreement(reference, run_model(path, images))
            print(f"| {folder.name} | {path.stem} | {agreement.correlation:.3f} | {agreement.peak_match:.3f} | "
                  f"{agreement.peak_within_one:.3f} | {agreement.mean_peak_shift:.2f} |")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
