"""Layer rule (docs/ARCHITECTURE.md): medtk.runtime (bench included) and medtk.devices never import
TF/Keras/TFMOT, train/compress, or the toolkit's data, report, CLI and pipeline layers.

Checked twice: at run time (a fresh interpreter loads a model, predicts, draws an overlay and measures
it the way a bench worker does, then nothing forbidden is in sys.modules) and statically (every import
statement in runtime/, runtime/bench/ and devices/, including the lazy ones inside functions that a
run may not reach).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = (
    "tensorflow",
    "keras",
    "tf_keras",
    "tensorflow_model_optimization",
    "medtk.train",
    "medtk.compress",
    "medtk.data",
    "medtk.report",
    "medtk.cli",
    "medtk.pipeline",
    "medtk.batch",
    "ray",  # the scale extra (medtk[scale]): archive-scale batch jobs only
    "pyarrow",
)
# The node (medtk.serve) sits on the runtime, never inside it: the integrator's library does not load the
# DICOM network stack or the web server.
SERVE_STACK = ("medtk.serve", "pynetdicom", "highdicom", "fastapi", "uvicorn", "starlette", "prometheus_client", "PIL")


def _forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


def _run(code: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_is_light():
    modules = _run("import sys, json, medtk.runtime; print(json.dumps(sorted(sys.modules)))")
    assert not [m for m in modules if _forbidden(m)]
    assert "cv2" not in modules and "ai_edge_litert" not in modules  # names load on first use


def test_bench_and_devices_import_nothing_forbidden():
    modules = _run(
        "import sys, json, medtk.devices, medtk.runtime.bench, medtk.runtime.bench_worker; "
        "medtk.devices.detect_device(); print(json.dumps(sorted(sys.modules)))"
    )
    assert not [m for m in modules if _forbidden(m)]


def test_predicting_loads_nothing_forbidden(int8_model, gray_image, tmp_path):
    image = tmp_path / "image.npy"
    import numpy as np

    np.save(image, gray_image)
    code = f"""
import json, sys
import numpy as np
from medtk.runtime import Classifier, overlay
clf = Classifier({str(int8_model)!r}, num_threads=1)
image = np.load({str(image)!r})
prediction = clf.predict(image)
overlay(image, prediction.cam)
clf.predict_prepared(np.zeros((1, 64, 64, 1), np.uint8))
from pathlib import Path
from medtk.runtime.bench.worker import measure
measure(Path({str(int8_model)!r}), threads=1, runs=2, warmup=0)
print(json.dumps(sorted(sys.modules)))
"""
    modules = _run(code)
    assert not [m for m in modules if _forbidden(m) or _serve_stack(m)]
    assert "ai_edge_litert" in modules  # the run really went through the interpreter
    assert not [m for m in modules if m.split(".")[0] in ("onnxruntime", "onnx")]  # the base install is LiteRT only


def test_predicting_onnx_loads_onnx_runtime_and_nothing_forbidden(onnx_models, tmp_path):
    code = f"""
import json, sys
import numpy as np
from medtk.runtime import Classifier
clf = Classifier({str(onnx_models["onnx_int8"])!r}, num_threads=1)
clf.predict(np.zeros((40, 30), np.uint8))
print(json.dumps(sorted(sys.modules)))
"""
    modules = _run(code)
    assert not [m for m in modules if _forbidden(m) or _serve_stack(m)]
    assert "onnxruntime" in modules and "onnx" not in modules  # the seal and metadata need no onnx package


def test_only_the_onnx_engine_imports_onnx_runtime():
    importers = sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "runtime").rglob("*.py")
                       if any(m.split(".")[0] in ("onnxruntime", "onnx") for m in _imports(p)))
    assert importers == ["runtime/onnx_engine.py"]


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0 and node.module:
            names.append(f"medtk.{path.parent.name}.{node.module}")  # relative: stays in its package
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
            names += [arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
    return names


def _serve_stack(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in SERVE_STACK)


def test_sources_import_nothing_forbidden():
    sources = sorted((REPO_ROOT / "runtime").rglob("*.py")) + sorted((REPO_ROOT / "devices").rglob("*.py"))
    assert len(sources) > 5 and REPO_ROOT / "runtime" / "bench" / "runner.py" in sources
    offenders = {str(p.relative_to(REPO_ROOT)): [m for m in _imports(p) if _forbidden(m) or _serve_stack(m)]
                 for p in sources}
    assert {path: names for path, names in offenders.items() if names} == {}


def test_static_scan_catches_a_lazy_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import numpy\n"
        "def f():\n    import tensorflow as tf\n"
        "def g():\n    from medtk.train.model import build_classifier\n"
        "def h():\n    importlib.import_module('tf_keras')\n"
        "def i():\n    from medtk.report.build import build_report\n"
        "def j():\n    import medtk.cli\n"
    )
    found = [m for m in _imports(sample) if _forbidden(m)]
    assert sorted(found) == sorted(["tensorflow", "medtk.train.model", "tf_keras", "medtk.report.build", "medtk.cli"])
