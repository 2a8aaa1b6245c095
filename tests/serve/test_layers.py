"""medtk.serve stands on the runtime's public API only: no TF/Keras, no train/compress/data/report, and
from medtk.runtime nothing but what `medtk.runtime.__all__` exports (the integrator's API)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import medtk.runtime
from tests.runtime.test_layers import REPO_ROOT, _imports

FORBIDDEN = ("tensorflow", "keras", "tf_keras", "tensorflow_model_optimization", "medtk.train", "medtk.compress",
             "medtk.data", "medtk.report")


def _forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


def _serve_sources():
    return sorted((REPO_ROOT / "serve").glob("*.py")) + [REPO_ROOT / "toolkit" / "cli" / "cmd_serve.py"]


def test_sources_import_nothing_forbidden():
    offenders = {p.name: [m for m in _imports(p) if _forbidden(m)] for p in _serve_sources()}
    assert {name: found for name, found in offenders.items() if found} == {}


def _runtime_imports(path) -> list[str]:
    """Every `medtk.runtime...` module or name a file imports, as written (`medtk.runtime.X` or `medtk.runtime:name`)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("medtk.runtime")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("medtk.runtime"):
            if node.module == "medtk.runtime":
                found += [f"medtk.runtime:{a.name}" for a in node.names]
            else:
                found.append(node.module)
    return found


def test_serve_uses_only_the_runtime_public_api():
    public = {f"medtk.runtime:{name}" for name in medtk.runtime.__all__}
    offenders = {p.name: [m for m in _runtime_imports(p) if m not in public] for p in _serve_sources()}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_public_api_check_catches_a_private_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from medtk.runtime import Classifier\nfrom medtk.runtime.imaging import read_image\n"
                      "def f():\n    from medtk.runtime import _LAZY\n")
    public = {f"medtk.runtime:{name}" for name in medtk.runtime.__all__}
    assert [m for m in _runtime_imports(sample) if m not in public] == ["medtk.runtime.imaging", "medtk.runtime:_LAZY"]


def test_a_running_node_loads_nothing_forbidden(serve_models, tmp_path, dicom_files):
    code = f"""
import json, sys, time, httpx
from pathlib import Path
from medtk.serve import ServeConfig, ServeNode
from tests.serve.serve_helpers import send_datasets
import pydicom
config = ServeConfig(model=Path({str(serve_models["op"])!r}), http_port=0, dicom_port=0, spool=Path({str(tmp_path)!r}),
                     workers=1, threads=1, min_free_bytes=0)
with ServeNode(config) as node:
    data = Path({str(dicom_files["cr"])!r}).read_bytes()
    assert httpx.post(f"http://127.0.0.1:{{node.http_port}}/v1/predict?cam=1", content=data,
                      headers={{"Content-Type": "application/dicom"}}).status_code == 200
    assert send_datasets(node.dicom_port, [pydicom.dcmread({str(dicom_files["ct"])!r})]) == [0]
    while len(list(node.spool.outbox.glob("*.dcm"))) < 2:
        time.sleep(0.05)
print(json.dumps(sorted(sys.modules)))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    modules = json.loads(result.stdout.strip().splitlines()[-1])
    assert [m for m in modules if _forbidden(m)] == []
    assert "ai_edge_litert" in modules and "highdicom" in modules
