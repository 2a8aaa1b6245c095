"""Escaped HTML building blocks: every text value goes through `esc`, only `Html` passes unchanged.

`Html` marks a string as already-safe markup (built here from escaped parts), so a value read from a
run folder (a file name, a class label, a data source) can never inject markup into the report.
"""

from __future__ import annotations

import html
from typing import Iterable


class Html(str):
    """Markup built from escaped parts; `esc` leaves it as it is, `+` escapes the plain-text side."""

    def __add__(self, other: object) -> "Html":
        return Html(str.__add__(self, esc(other)))

    def __radd__(self, other: object) -> "Html":
        return Html(str.__add__(esc(other), self))


def esc(value: object) -> Html:
    return value if isinstance(value, Html) else Html(html.escape(str(value), quote=True))


def join(parts: Iterable[object], sep: str = "") -> Html:
    return Html(sep.join(esc(part) for part in parts))


def tag(name: str, content: object = "", cls: str | None = None, **attrs: object) -> Html:
    """`<name class=... attr=...>content</name>`; attribute values are escaped too."""
    pairs = ([("class", cls)] if cls else []) + [(key.rstrip("_").replace("_", "-"), v) for key, v in attrs.items()]
    rendered = "".join(f' {key}="{esc(value)}"' for key, value in pairs if value is not None)
    return Html(f"<{name}{rendered}>{esc(content)}</{name}>")


def img(uri: str, alt: str, cls: str | None = None) -> Html:
    if not uri.startswith("data:image/png;base64,"):
        raise ValueError("report images must be inline PNG data URIs")
    return Html(f'<img src="{uri}" alt="{esc(alt)}"' + (f' class="{esc(cls)}"' if cls else "") + ">")


def table(headers: list[object], rows: list[list[object]], cls: str = "grid", numeric_from: int = 1) -> Html:
    """A table; columns from `numeric_from` on are right-aligned (numbers read better that way)."""

    def cell(kind: str, value: object, index: int) -> Html:
        return tag(kind, value, cls="num" if index >= numeric_from else None)

    head = tag("tr", join(cell("th", h, i) for i, h in enumerate(headers)))
    body = join(tag("tr", join(cell("td", v, i) for i, v in enumerate(row))) for row in rows)
    return tag("table", tag("thead", head) + tag("tbody", body), cls=cls)


def section(anchor: str, title: str, *content: object) -> Html:
    return tag("section", tag("h2", title) + join(content), id=anchor)


def note(text: object, cls: str = "note") -> Html:
    return tag("p", text, cls=cls)


def not_run(what: str, how: str) -> Html:
    """The standard sentence for a stage whose output is not in the run folder."""
    return tag("p", Html(f"{esc(what)}: <strong>not run</strong> (run <code>{esc(how)}</code>)."), cls="missing")


def fmt(value: object, digits: int = 3) -> str:
    """Numbers for people: fixed digits, 'n/a' for missing."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def signed(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:+.{digits}f}"


def size(count: int | None) -> str:
    if count is None:
        return "n/a"
    return f"{count / 1e6:.2f} MB" if count >= 100_000 else f"{count / 1e3:.1f} kB"


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def plain_url(text: str) -> str:
    """A cited address without its scheme: readable, and the report keeps no link that could be fetched."""
    return text.replace("https://", "").replace("http://", "")
