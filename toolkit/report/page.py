"""The page: one self-contained HTML document (inline CSS, images as data URIs, no scripts).

The Content-Security-Policy forbids every network fetch: `default-src 'none'`, images only from
`data:`, and the one inline style block allowed by its sha256 hash. The report opens offline, and a
value that slipped through unescaped still could not load anything.
"""

from __future__ import annotations

import base64
import hashlib
from string import Template

from medtk.report.html import Html, esc

CSS = """
:root { --ink:#1d2733; --muted:#5b6878; --line:#d9dee5; --bg:#f5f7fa; --card:#fff; --ok:#1f7a3e; --okbg:#e3f4e8;
  --bad:#b42318; --badbg:#fde8e6; --warn:#8a5a00; --warnbg:#fff4d6; --accent:#1b5fa8; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink); font:15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto,
  "Helvetica Neue", Arial, sans-serif; }
main { max-width:1100px; margin:0 auto; padding:0 24px 48px; }
header.top { background:var(--card); border-bottom:1px solid var(--line); }
header.top .inner { max-width:1100px; margin:0 auto; padding:20px 24px 16px; }
h1 { font-size:24px; margin:0 0 4px; font-weight:650; }
h2 { font-size:19px; margin:0 0 12px; font-weight:650; border-bottom:1px solid var(--line); padding-bottom:6px; }
h3 { font-size:15px; margin:18px 0 8px; font-weight:650; }
.sub { color:var(--muted); margin:0; }
.verdict { display:flex; gap:16px; align-items:center; flex-wrap:wrap; margin-top:14px; padding:12px 16px;
  border-radius:8px; border:1px solid var(--line); }
.verdict.pass { background:var(--okbg); border-color:#a6dbb6; }
.verdict.fail { background:var(--badbg); border-color:#f4b7b0; }
.verdict.none, .verdict.warn { background:var(--warnbg); border-color:#f0d48a; }
.verdict .badge { font-weight:700; font-size:16px; }
.verdict.pass .badge { color:var(--ok); } .verdict.fail .badge { color:var(--bad); } .verdict.none .badge, .verdict.warn .badge { color:var(--warn); }
.kpis { display:flex; gap:10px; flex-wrap:wrap; margin:14px 0 0; padding:0; list-style:none; }
.kpis li { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:8px 12px; min-width:120px; }
.kpis .v { display:block; font-size:20px; font-weight:650; font-variant-numeric:tabular-nums; }
.kpis .k { display:block; font-size:12px; color:var(--muted); text-transform:uppercase; letter-spacing:.04em; }
nav.toc { margin-top:12px; font-size:13px; }
nav.toc a { color:var(--accent); text-decoration:none; margin-right:14px; }
section { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:18px 20px; margin:20px 0; }
table.grid { border-collapse:collapse; width:100%; font-size:14px; font-variant-numeric:tabular-nums; margin:6px 0 10px; }
table.grid th, table.grid td { padding:6px 10px; border-bottom:1px solid var(--line); text-align:left; vertical-align:top; }
table.grid th { background:#eef2f6; font-weight:600; font-size:13px; }
table.grid .num { text-align:right; }
table.kv { border-collapse:collapse; font-size:14px; }
table.kv th { text-align:left; color:var(--muted); font-weight:500; padding:4px 16px 4px 0; vertical-align:top; white-space:nowrap; }
table.kv td { padding:4px 0; }
.note { color:var(--muted); font-size:13px; margin:6px 0; }
.missing { color:var(--warn); background:var(--warnbg); padding:8px 12px; border-radius:6px; }
.ok { color:var(--ok); font-weight:600; } .bad { color:var(--bad); font-weight:600; } .warn { color:var(--warn); font-weight:600; }
.figs { display:flex; flex-wrap:wrap; gap:16px; align-items:flex-start; }
.figs figure { margin:0; max-width:48%; }
figure img { max-width:100%; height:auto; border:1px solid var(--line); border-radius:4px; background:#fff; }
figcaption { font-size:12px; color:var(--muted); margin-top:4px; }
.samples { display:flex; flex-wrap:wrap; gap:18px; }
.samples .cls { font-weight:600; margin-bottom:4px; }
.samples img { width:88px; height:88px; image-rendering:pixelated; border-radius:4px; margin:0 4px 4px 0;
  border:1px solid var(--line); }
.gallery { display:grid; grid-template-columns:repeat(auto-fill, minmax(470px, 1fr)); gap:14px; }
.case { border:1px solid var(--line); border-radius:8px; padding:10px; }
.case.wrong { border-color:#f0a39a; }
.case .head { font-size:13px; margin-bottom:6px; }
.case .id { font-family:ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color:var(--muted); }
.case .panels { display:flex; gap:8px; }
.case figure { flex:1 1 0; min-width:0; margin:0; text-align:center; }
.case img { width:100%; max-width:150px; height:auto; image-rendering:pixelated; }
.legend { font-size:13px; color:var(--muted); }
code { font-family:ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:13px; background:#eef2f6;
  padding:1px 4px; border-radius:3px; }
ul.plain { margin:6px 0; padding-left:20px; }
footer { color:var(--muted); font-size:12px; text-align:center; margin:24px 0; }
""".strip()

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="$csp">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>$title</title>
<style>$css</style>
</head>
<body>
<header class="top"><div class="inner">
$header
</div></header>
<main>
$body
</main>
<footer>$footer</footer>
</body>
</html>
""")


def content_security_policy(css: str = CSS) -> str:
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return (
        "default-src 'none'; img-src data:; style-src 'sha256-" + digest + "'; "
        "base-uri 'none'; form-action 'none'"
    )


def render_page(title: str, header: Html, body: Html, footer: Html) -> str:
    return PAGE.substitute(
        csp=content_security_policy(), title=esc(title), css=CSS, header=header, body=body, footer=footer
    )
