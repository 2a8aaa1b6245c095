"""Layer rule of the run folder's documents: `toolkit/schema/` holds data types and imports no computation.

The computing modules (`medtk.clinical`, the localisation scores) import their result types from the
schema, never the reverse, so reading a metrics.json or compress.json loads no numpy or scikit-learn.
Checked statically (every import statement, lazy ones included: the scan of tests/runtime/test_layers.py)
and in a fresh interpreter.
"""

from __future__ import annotations

import sys

from tests.runtime.test_layers import REPO_ROOT, _imports, _run

# What a document may stand on besides the standard library: medtk's schema and its JSON/error leaves.
ALLOWED_MEDTK = ("medtk.schema", "medtk.jsondoc", "medtk.errors")
COMPUTATION = ("numpy", "sklearn", "scipy", "medtk.clinical", "medtk.runtime", "medtk.train")


def _allowed(module: str) -> bool:
    return module.split(".")[0] in sys.stdlib_module_names or any(
        module == name or module.startswith(name + ".") for name in ALLOWED_MEDTK)


def test_schema_sources_import_only_the_standard_library_and_the_schema():
    sources = sorted((REPO_ROOT / "toolkit" / "schema").glob("*.py"))
    assert REPO_ROOT / "toolkit" / "schema" / "metrics.py" in sources
    offenders = {p.name: [m for m in _imports(p) if not _allowed(m)] for p in sources}
    assert {name: found for name, found in offenders.items() if found} == {}
    assert not [m for m in COMPUTATION if _allowed(m)]  # the rule does refuse computation


def test_reading_the_documents_loads_no_computation():
    modules = _run("import json, sys, medtk.schema, medtk.schema.localization; print(json.dumps(sorted(sys.modules)))")
    assert [m for m in modules if any(m == c or m.startswith(c + ".") for c in COMPUTATION)] == []
