"""The report as a person sees it: rendered by headless Chromium (installed by .ci/system-deps; its
absence is a failure). A screenshot that is not blank, every image decoded, and a Content-Security-
Policy that really stops the page from fetching anything (checked against a real local HTTP server)."""

from __future__ import annotations

import base64
import hashlib
import http.server
import re
import shutil
import subprocess
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from medtk.report import write_report
from medtk.report.page import CSS, content_security_policy

pytestmark = pytest.mark.slow

CHECK_IMAGES = """
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const broken = images.filter((i) => !i.complete || i.naturalWidth === 0);
  document.documentElement.setAttribute("data-images", String(images.length));
  document.documentElement.setAttribute("data-broken", String(broken.length));
});
""".strip()


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is missing: run .ci/system-deps (apt-get install chromium)"
    return path


def _run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def report_html(synthetic_run, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("page") / "run"
    shutil.copytree(synthetic_run, run)
    return write_report(run).path


def test_screenshot_is_a_page_not_a_blank(report_html, tmp_path):
    shot = tmp_path / "report.png"
    done = _run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", report_html.as_uri())
    assert shot.is_file(), done.stderr[-2000:]
    pixels = cv2.imread(str(shot))
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 20
    colours = np.unique(pixels.reshape(-1, 3) // 16, axis=0)
    assert len(colours) > 50  # text, tables, plots and images, not a flat page


def test_every_image_decodes_in_the_browser(report_html, tmp_path):
    """A test-only copy adds one script that records decoded images, allowed by its hash in the CSP."""
    html = report_html.read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(CHECK_IMAGES.encode()).digest()).decode()
    policy = content_security_policy()
    assert policy in html
    probe = html.replace(policy, f"{policy}; script-src 'sha256-{digest}'").replace("</body>", f"<script>{CHECK_IMAGES}</script></body>")
    page = tmp_path / "probe.html"
    page.write_text(probe, encoding="utf-8")
    done = _run_chromium(tmp_path, "--dump-dom", "--virtual-time-budget=5000", page.as_uri())
    found = re.search(r'data-images="(\d+)" data-broken="(\d+)"', done.stdout)
    assert found, done.stderr[-2000:]
    assert int(found.group(1)) >= 8 * 3 + 8 + 4 and int(found.group(2)) == 0


class _Counter(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).requests.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_policy_blocks_every_fetch(report_html, tmp_path):
    """An injected remote image is not fetched under the report's CSP; without the CSP it is (control)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        html = report_html.read_text(encoding="utf-8")
        injected = f'<img src="{url}/img.png"><link rel="stylesheet" href="{url}/style.css">'
        guarded = tmp_path / "guarded.html"
        guarded.write_text(html.replace("</main>", injected + "</main>"), encoding="utf-8")
        _run_chromium(tmp_path, "--dump-dom", "--virtual-time-budget=3000", guarded.as_uri())
        assert _Counter.requests == []
        open_page = tmp_path / "open.html"
        without = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
        open_page.write_text(without.replace("</main>", injected + "</main>"), encoding="utf-8")
        _run_chromium(tmp_path, "--dump-dom", "--virtual-time-budget=3000", open_page.as_uri())
        assert "/img.png" in _Counter.requests
    finally:
        server.shutdown()


def test_the_style_block_is_the_one_the_policy_allows(report_html):
    html = report_html.read_text(encoding="utf-8")
    assert f"<style>{CSS}</style>" in html
    digest = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in html
