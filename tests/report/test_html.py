"""Escaping: text from a run folder can never become markup."""

from __future__ import annotations

import pytest

from medtk.report.html import Html, esc, img, plain_url, table, tag


def test_text_is_escaped_and_markup_is_kept():
    assert esc('<a href="x">&') == "&lt;a href=&quot;x&quot;&gt;&amp;"
    assert esc(Html("<b>ok</b>")) == "<b>ok</b>"
    assert tag("td", "<i>") == "<td>&lt;i&gt;</td>"
    assert tag("a", "x", href='"><script>') == '<a href="&quot;&gt;&lt;script&gt;">x</a>'


def test_concatenation_escapes_the_plain_side():
    assert isinstance(Html("<b>") + "<i>", Html)
    assert Html("<b>") + "<i>" == "<b>&lt;i&gt;"
    assert "<i>" + Html("<b>") == "&lt;i&gt;<b>"
    assert tag("p", "a") + tag("p", "b") == "<p>a</p><p>b</p>"


def test_table_right_aligns_numbers():
    html = table(["name", "value"], [["<x>", 1.5]])
    assert '<th class="num">value</th>' in html and "<td>&lt;x&gt;</td>" in html and '<td class="num">1.5</td>' in html


def test_images_must_be_inline_pngs():
    assert img("data:image/png;base64,AAAA", 'a "b"') == '<img src="data:image/png;base64,AAAA" alt="a &quot;b&quot;">'
    with pytest.raises(ValueError, match="inline PNG"):
        img("https://example.org/x.png", "remote")


def test_cited_addresses_lose_their_scheme():
    assert plain_url("see https://coral.ai/docs and http://x.org") == "see coral.ai/docs and x.org"
