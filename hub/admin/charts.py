"""Bar charts as geometry for server-rendered inline SVG (templates/_charts.html draws them).

No JavaScript and no inline style: the CSP forbids both, so positions are SVG attributes and colours are
classes styled in admin.css. Each bar carries a text label, shown as its tooltip (`<title>`); the numbers
are also in a data table beside every chart, which is what assistive technology reads.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Bar", "Chart", "Column", "Segment", "bar_chart", "nice_ceiling", "sparkline"]


@dataclass(frozen=True, slots=True)
class Column:
    """One bar's data: stacked values by kind (a CSS class suffix), its tooltip, and an axis label or None."""

    values: Sequence[tuple[str, float]]
    label: str
    tick: str | None = None
    marker: float | None = None  # a second measure drawn as a tick across the bar (e.g. the average)


@dataclass(frozen=True, slots=True)
class Segment:
    kind: str
    y: float
    height: float


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    label: str
    segments: tuple[Segment, ...]
    tick: str | None
    marker_y: float | None


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    top: float  # the plot area's top and bottom (y grows downwards)
    bottom: float
    left: float
    right: float
    bars: tuple[Bar, ...]
    grid: tuple[tuple[float, str], ...]  # (y, label) of horizontal grid lines
    empty: bool


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times 10^k at or above `value` (at least 1): a round top for an axis."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power + 1e-9:
            return float(step * power)
    return float(10 * power)  # unreachable


def _number(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
    return f"{text}{unit}"


def bar_chart(
    columns: Sequence[Column], *, width: int = 720, height: int = 200, unit: str = "", gap: float = 0.2
) -> Chart:
    """Stacked bars, one per column, under a rounded maximum with three labelled grid lines."""
    left, right, top, bottom = 48.0, width - 8.0, 10.0, height - 24.0
    tallest = max((max(sum(v for _, v in c.values), c.marker or 0) for c in columns), default=0)
    ceiling = nice_ceiling(tallest)
    scale = (bottom - top) / ceiling
    slot = (right - left) / max(len(columns), 1)
    bars = []
    for index, column in enumerate(columns):
        y = bottom
        segments = []
        for kind, value in column.values:
            if value <= 0:
                continue
            tall = max(value * scale, 1.0)  # a non-zero value stays visible
            y -= tall
            segments.append(Segment(kind, round(y, 2), round(tall, 2)))
        marker = None if column.marker is None else round(bottom - column.marker * scale, 2)
        x = left + index * slot + slot * gap / 2
        bars.append(Bar(round(x, 2), round(slot * (1 - gap), 2), column.label, tuple(segments), column.tick, marker))
    grid = tuple((round(bottom - f * (bottom - top), 2), _number(ceiling * f, unit)) for f in (0, 0.5, 1))
    return Chart(width, height, top, bottom, left, right, tuple(bars), grid, empty=tallest == 0)


def sparkline(values: Sequence[int], *, width: int = 120, height: int = 24) -> Chart:
    """A small unlabelled bar chart: the shape of a series, beside the numbers that say it."""
    tallest = max(values, default=0)
    slot = width / max(len(values), 1)
    bars = []
    for index, value in enumerate(values):
        tall = 0.0 if not value else max(value / tallest * (height - 2), 1.0)
        segments = (Segment("calls", round(height - tall, 2), round(tall, 2)),) if value else ()
        bars.append(Bar(round(index * slot + slot * 0.1, 2), round(slot * 0.8, 2), str(value), segments, None, None))
    return Chart(width, height, 0, height, 0, width, tuple(bars), (), empty=tallest == 0)
