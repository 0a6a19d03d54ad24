"""Medians and ratios of interleaved rounds, and the markdown table of the results."""

import math
import statistics


def median(values: list[float]) -> float:
    clean = [value for value in values if not math.isnan(value)]
    return statistics.median(clean) if clean else float("nan")


def ratio(numerators: list[float], denominators: list[float]) -> float:
    """The median of per-round ratios: round i of one series against round i of the other.

    Both series were measured in the same rounds, one right after the other, so a ratio of
    neighbours cancels most of the drift of a shared, noisy machine.
    """
    if len(numerators) != len(denominators):
        raise ValueError("the series must come from the same rounds")
    return median([a / b if b else float("nan") for a, b in zip(numerators, denominators, strict=True)])


def fmt(value: float, digits: int = 2) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "–"
    if isinstance(value, float) and abs(value) >= 100:
        return f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
