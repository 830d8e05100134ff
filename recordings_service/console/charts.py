"""Bar charts drawn on the server as SVG geometry (no script, no style attribute, so the
strict CSP holds): the template places the rectangles this module computes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

WIDTH, HEIGHT, AXIS = 720, 180, 20  # drawing area and the label band below it


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int
    series: int = 0  # which colour (a stacked chart's purpose)


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    labels: list[tuple[float, str]]  # x and text under the axis
    series: list[str]  # legend, in colour order
    peak: int
    width: int = WIDTH
    height: int = HEIGHT + AXIS


def month_starts(now: datetime, count: int) -> list[datetime]:
    """The start of ``now``'s month (in ``now``'s zone) and of the following months, in UTC."""
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    starts = []
    for i in range(count):
        year, month = divmod(first.month - 1 + i, 12)
        starts.append(first.replace(year=first.year + year, month=month + 1).astimezone(UTC))
    return starts


def _scale(value: int, peak: int) -> float:
    return 0.0 if peak == 0 else value / peak * (HEIGHT - 10)


def bars(values: list[tuple[str, int]], top: int | None = None) -> Chart:
    """One bar per value; ``top`` fixes the scale (scores: 100) instead of the highest."""
    peak = top if top is not None else max((v for _, v in values), default=0)
    slot = WIDTH / max(len(values), 1)
    drawn = []
    for i, (label, value) in enumerate(values):
        if not value:
            continue
        height = _scale(value, peak)
        drawn.append(Bar(i * slot + 4, HEIGHT - height, slot - 8, height, label, value))
    return Chart(drawn, [(i * slot + slot / 2, label) for i, (label, _) in enumerate(values)],
                 [], peak)


def stacked_days(counts: dict[tuple[date, str], int], first: date, days: int) -> Chart:
    """One stacked bar per day, one colour per purpose."""
    series = sorted({purpose for _, purpose in counts})
    totals = [sum(counts.get((first + timedelta(days=d), p), 0) for p in series)
              for d in range(days)]
    peak = max(totals, default=0)
    slot = WIDTH / days
    drawn = []
    for d in range(days):
        day = first + timedelta(days=d)
        top = float(HEIGHT)
        for s, purpose in enumerate(series):
            value = counts.get((day, purpose), 0)
            if not value:
                continue
            height = _scale(value, peak)
            top -= height
            drawn.append(Bar(d * slot + 2, top, slot - 4, height,
                             f"{day.isoformat()} {purpose}", value, s))
    labels = [(max(d * slot + slot / 2, 16), (first + timedelta(days=d)).strftime("%m-%d"))
              for d in range(0, days, 5)]
    return Chart(drawn, labels, series, peak)
