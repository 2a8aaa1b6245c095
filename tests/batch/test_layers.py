"""The base install stays light: `medtk predict FILE` (and `import medtk.runtime`, tests/runtime/test_layers.py)
never import Ray, pyarrow or pandas; only `--data` does."""

from __future__ import annotations

from tests.runtime.test_layers import _run

SCALE_STACK = ("ray", "pyarrow", "pandas")


def test_predict_files_imports_no_scale_library(batch_model, image_folder):
    image = next(image_folder.glob("normal/*.png"))
    code = f"""
import json, sys
from typer.testing import CliRunner
from medtk.cli import app
result = CliRunner().invoke(app, ["predict", {str(batch_model)!r}, {str(image)!r}, "--json", "--threads", "1"])
assert result.exit_code == 0, result.output
print(json.dumps(sorted(sys.modules)))
"""
    modules = _run(code)
    assert "ai_edge_litert" in modules  # it really predicted
    assert [m for m in modules if m.split(".")[0] in SCALE_STACK] == []
