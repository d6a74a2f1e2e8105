"""Rows of the benchmark table and their rendering as Markdown."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Row:
    """One line of the table.

    ``ratios`` are per-round ratios (ours / theirs unless ``label`` says otherwise);
    ``figure`` replaces min/median/max for rows that are counts, not timings.
    """

    what: str
    compared_with: str
    target: str
    met: bool | None
    ratios: Sequence[float] = ()
    figure: str = ""
    detail: str = ""
    notes: list[str] = field(default_factory=list)

    def cells(self) -> list[str]:
        if self.ratios:
            low, mid, high = spread(self.ratios)
            measured = f"{fmt(low)} / **{fmt(mid)}** / {fmt(high)}"
        else:
            measured = self.figure
        verdict = {True: "yes", False: "**no**", None: "n/a"}[self.met]
        return [self.what, self.compared_with, measured, self.detail, self.target, verdict]


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def fmt(x: float) -> str:
    """A ratio with about three significant figures."""
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}" if x >= 0.01 else f"{x:.2g}"


def us(seconds: float) -> str:
    """Seconds as a readable duration."""
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.2f} µs"
    return f"{seconds * 1e9:.0f} ns"


HEADER = ["what", "compared with", "ratio min / **median** / max", "measured", "target", "met"]


def render(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row.cells()) + " |")
    return "\n".join(lines)
