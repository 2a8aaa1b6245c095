"""medtk.runtime.serve stands on the runtime only: no TF/Keras, no train/compress/data/report."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.runtime.test_layers import REPO_ROOT, _imports

FORBIDDEN = ("tensorflow", "keras", "tf_keras", "tensorflow_model_optimization", "medtk.train", "medtk.compress",
             "medtk.data", "medtk.report")


def _forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


def test_sources_import_nothing_forbidden():
    sources = sorted((REPO_ROOT / "runtime" / "serve").glob("*.py")) + [REPO_ROOT / "toolkit" / "cli" / "cmd_serve.py"]
    offenders = {p.name: [m for m in _imports(p) if _forbidden(m)] for p in sources}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_a_running_node_loads_nothing_forbidden(serve_models, tmp_path, dicom_files):
    code = f"""
import json, sys, time, httpx
from pathlib import Path
from medtk.runtime.serve import ServeConfig, ServeNode
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
