"""Layer rule of the run folder's documents: `toolkit/schema/` holds data types and imports no computation.

The computing modules (`medtk.clinical`, the localisation scores) import their result types from the
schema, never the reverse, so reading a metrics.json or compress.json loads no numpy or scikit-learn.
Checked statically (every import statement, lazy ones included) and in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# What a document may stand on: the standard library and medtk's JSON/error leaves.
ALLOWED_MEDTK = ("medtk.schema", "medtk.jsondoc", "medtk.errors")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            names.append(f"medtk.schema.{node.module or ''}".rstrip("."))  # relative: stays in the schema
    return names


def _allowed(module: str) -> bool:
    if module.split(".")[0] in sys.stdlib_module_names:
        return True
    return any(module == name or module.startswith(name + ".") for name in ALLOWED_MEDTK)


def test_schema_sources_import_no_computation():
    sources = sorted((REPO_ROOT / "toolkit" / "schema").glob("*.py"))
    assert REPO_ROOT / "toolkit" / "schema" / "metrics.py" in sources
    offenders = {p.name: [m for m in _imports(p) if not _allowed(m)] for p in sources}
    assert {name: modules for name, modules in offenders.items() if modules} == {}


def test_the_scan_sees_lazy_and_computation_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from dataclasses import dataclass\n"
        "from medtk.jsondoc import Document\n"
        "import numpy as np\n"
        "def f():\n    from medtk.clinical.bootstrap import bootstrap_intervals\n"
        "def g():\n    from sklearn.metrics import roc_auc_score\n"
    )
    assert [m for m in _imports(sample) if not _allowed(m)] == ["numpy", "medtk.clinical.bootstrap", "sklearn.metrics"]


def test_reading_the_documents_loads_no_computation():
    code = "import json, sys, medtk.schema, medtk.schema.localization; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    modules = json.loads(result.stdout.strip().splitlines()[-1])
    heavy = ("numpy", "sklearn", "scipy", "medtk.clinical", "medtk.runtime", "medtk.train")
    assert [m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy)] == []
