"""`write_report` on real runs: every section present, numbers as in the JSON files, inline images only,
no network references, sections that did not run say so, and no DICOM patient identifier anywhere."""

from __future__ import annotations

import base64
import json
import re
import shutil

import cv2
import numpy as np
import pytest

from medtk.report import write_report

pytestmark = pytest.mark.slow

SECTIONS = ("data", "training", "evaluation", "compression", "latency", "cams", "model-card")


def _render(run) -> str:
    result = write_report(run)
    assert result.path == run / "report.html"
    return result.path.read_text(encoding="utf-8")


def _visible(html: str) -> str:
    """The page without its inline image payloads (random base64 text could contain any short string)."""
    return re.sub(r'src="data:image/png;base64,[A-Za-z0-9+/=]+"', 'src=""', html)


def test_sections_and_numbers_match_the_run_files(run_copy):
    html = _render(run_copy)
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in html
    metrics = json.loads((run_copy / "metrics.json").read_text())
    assert f"{metrics['test']['auc']:.4f}" in html
    compress = json.loads((run_copy / "compress.json").read_text())
    table = html[html.index('<section id="compression">'): html.index('<section id="latency">')]
    for entry in compress["variants"]:
        assert f"<td>{entry['name']}</td>" in table
        assert f"{entry['test']['auc']:.4f}" in table and f"{entry['delta_auc']:+.4f}" in table
        low, high = entry["latency_range_ms"]  # what the recommendation weighed, with its spread
        assert f"{entry['latency_ms']:.2f} [{low:.2f}-{high:.2f}]" in table
    assert compress["latency"]["host"] in table
    gate = {"passed": "PASSED", "warning": "WARNING", "failed": "FAILED"}[write_report(run_copy).verdict]
    assert f'<span class="badge">{gate}</span>' in html
    latency = html[html.index('<section id="latency">'): html.index('<section id="cams">')]
    for name in ("bench.json", "bench-raspberry-pi-5.json"):
        bench = json.loads((run_copy / name).read_text())
        for result in bench["results"]:
            assert f"{result['bare']['p50_ms']:.2f}" in latency
            if result["estimate"]:
                assert f"{result['estimate']['estimated_ms']:.1f}" in latency
    assert "measured on the device" in latency and "ESTIMATE: measured on this host" in latency
    assert "macs-scaled-reference" in latency


def test_gallery_compares_float32_and_the_recommended_variant_on_both_classes(run_copy):
    """The gallery shows what would be deployed: compress.json's recommended variant (issue 11)."""
    html = _render(run_copy)
    recommended = json.loads((run_copy / "compress.json").read_text())["recommended"]
    cams = html[html.index('<section id="cams">'): html.index('<section id="model-card">')]
    cases = re.findall(r'<div class="case[^"]*">.*?</figure></div></div>', cams)
    assert len(cases) == 8
    assert any("true label <strong>normal" in c for c in cases) and any("true label <strong>lesion" in c for c in cases)
    for case in cases:
        assert "float32: " in case and f"{recommended}: " in case
    assert "Does the CAM point at the lesion?" in cams and "2 x 2" in cams  # synthetic masks are scored
    card = html[html.index('<section id="model-card">'):]
    assert "Not a medical device" in card and "not validated clinically" in card and "CAM resolution is 2 x 2" in card
    assert "ai-edge-litert" in card and "TensorFlow 2." in card


def test_images_are_inline_pngs_and_nothing_points_to_the_network(run_copy):
    html = _render(run_copy)
    sources = re.findall(r'<img src="([^"]*)"', html)
    assert len(sources) >= 8 * 3 + 8 + 4  # gallery panels, samples, plots
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        pixels = cv2.imdecode(np.frombuffer(base64.b64decode(source.split(",", 1)[1]), np.uint8), cv2.IMREAD_UNCHANGED)
        assert pixels is not None and pixels.size > 0
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"<(script|link|iframe|object|embed)\b", html)
    assert "default-src 'none'" in html and "img-src data:" in html


def test_stages_that_did_not_run_are_reported_as_not_run(run_copy):
    for name in ("compress.json", "bench.json", "bench-raspberry-pi-5.json"):
        (run_copy / name).unlink()
    shutil.rmtree(run_copy / "export")
    html = _render(run_copy)
    assert '<span class="badge">NOT RUN</span>' in html
    for what in ("Compression (compress.json)", "Latency (bench.json)"):
        assert f"{what}: <strong>not run</strong>" in html
    assert "Not run: no exported float32 model" in html


def test_text_from_the_run_is_escaped(run_copy):
    data = json.loads((run_copy / "data.json").read_text())
    data["skipped"] = [{"item": "<img src=x onerror=alert(1)>.png", "reason": "<b>bad</b>"}]
    (run_copy / "data.json").write_text(json.dumps(data))
    html = _render(run_copy)
    assert "&lt;img src=x onerror=alert(1)&gt;.png" in html and "&lt;b&gt;bad&lt;/b&gt;" in html
    assert "<img src=x" not in html


def test_not_a_run_folder_is_one_error(tmp_path):
    from medtk.errors import ModelError

    with pytest.raises(ModelError, match="not a medtk run folder"):
        write_report(tmp_path)
    with pytest.raises(ModelError, match="no such run folder"):
        write_report(tmp_path / "missing")


def test_no_dicom_patient_identifier_reaches_the_report(dicom_run):
    run, identities = dicom_run
    html = _render(run)
    visible = _visible(html)
    assert "image_00.dcm" in visible  # items are named by their path relative to the data root
    for name, patient_id in identities:
        for value in (name, patient_id, *name.split("^")):
            assert value not in visible, value


def test_report_renders_without_tensorflow(run_copy):
    """`medtk report` needs the report extra (matplotlib), not TensorFlow: a reviewer's install."""
    import subprocess
    import sys

    blocked = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization")
    code = (f"import sys\nfor name in {blocked!r}:\n    sys.modules[name] = None\n"
            "from medtk.report import write_report\nwrite_report(sys.argv[1])\n"
            f"assert not [m for m in sys.modules if m.split('.')[0] in {blocked!r} and sys.modules[m] is not None]\n")
    (run_copy / "report.html").unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "-c", code, str(run_copy)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (run_copy / "report.html").is_file()


def _fail_variants(run, failing, *, recommended: str) -> None:
    """Rewrite the run's compress.json (made with --int8) as if the `failing` variants had failed their
    AUC gate: the report reads the verdict from the file, never recomputes it."""
    path = run / "compress.json"
    report = json.loads(path.read_text())
    messages = {}
    for entry in report["variants"]:
        if failing(entry["name"]):
            entry["status"] = "failed"
            messages[entry["name"]] = f"{entry['name']}: test AUC 0.5000 is 0.4000 below float32 (--max-auc-drop 0.01)"
    report["gate"].update(passed=False, failures=list(messages.values()))
    report.update(recommended=recommended, not_recommended={name: f"failed the gate: {m}" for name, m in messages.items()})
    path.write_text(json.dumps(report))


def test_a_failing_variant_beside_the_recommended_one_is_an_amber_warning_not_failed(run_copy):
    """Issue 22: the headline said FAILED while compress exited 0 and recommended a passing variant."""
    from medtk.compress.verdict import compress_verdict
    from medtk.run import Run

    _fail_variants(run_copy, lambda name: name == "float16", recommended="int8")
    result = write_report(run_copy)
    html = result.path.read_text(encoding="utf-8")
    assert result.verdict == "warning" == compress_verdict(Run(run_copy).compression()).level
    header = html[: html.index('<nav class="toc">')]
    assert '<div class="verdict warn"><span class="badge">WARNING</span>' in header and "FAILED" not in header
    assert "deploy int8, which passes every gate; not deployable: float16: test AUC 0.5000" in header
    table = html[html.index('<section id="compression">'): html.index('<section id="latency">')]
    assert '<span class="warn">warning</span>' in table and "FAILED" not in table


def test_failed_headline_only_when_compress_failed_what_was_asked(run_copy):
    from medtk.variants import get_variant

    _fail_variants(run_copy, lambda name: get_variant(name).integer, recommended="dynamic")  # --int8, no integer passed
    result = write_report(run_copy)
    header = result.path.read_text(encoding="utf-8").split('<nav class="toc">')[0]
    assert result.verdict == "failed"
    assert '<div class="verdict fail"><span class="badge">FAILED</span>' in header
    assert "no int8 variant passes every gate: int8: test AUC 0.5000" in header
