"""Inline SVG bar charts for the HTML report, written by hand.

The report must open offline and from a file, so no plotting library or script
CDN: a horizontal bar chart is a few rectangles and labels.  Colours come from
CSS classes on the bars (the page's stylesheet), so charts and matrix agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Callable, Sequence

LABEL_W = 230
BAR_W = 300
VALUE_W = 150
ROW_H = 22


@dataclass(frozen=True)
class Bar:
    """One bar: its row label, value, CSS class (colour) and hover text."""

    label: str
    value: float
    css: str
    tip: str = ""


def bar_chart(title: str, bars: Sequence[Bar], fmt: Callable[[float], str]) -> str:
    """A titled horizontal bar chart, bars scaled to the largest value (a zero value is a hairline)."""
    top = max((b.value for b in bars), default=0) or 1
    height = ROW_H * len(bars) + 8
    width = LABEL_W + BAR_W + VALUE_W
    rows = []
    for i, b in enumerate(bars):
        y = 4 + i * ROW_H
        w = max(1.0, BAR_W * b.value / top)
        tip = escape(b.tip or f"{b.label}: {fmt(b.value)}")
        rows.append(
            f'<g><title>{tip}</title>'
            f'<text x="{LABEL_W - 6}" y="{y + 15}" text-anchor="end" class="lbl">{escape(_cut(b.label, 34))}</text>'
            f'<rect x="{LABEL_W}" y="{y + 3}" width="{w:.1f}" height="{ROW_H - 6}" class="bar {escape(b.css)}"/>'
            f'<text x="{LABEL_W + w + 5:.1f}" y="{y + 15}" class="val">{escape(fmt(b.value))}</text></g>')
    return (f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
            f'<svg role="img" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">{"".join(rows)}</svg></figure>')


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else "…" + text[-(n - 1):]
