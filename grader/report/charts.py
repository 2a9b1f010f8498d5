"""The class report's charts, drawn with matplotlib as inline SVG.

Chart text is plain text (CHART_STYLE): a `$` in a student's error message is a dollar sign,
not the start of a formula, and every label passes through `plain_text.for_chart`.
"""
from __future__ import annotations

import io
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any, TYPE_CHECKING

from grader.core.plain_text import for_chart

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

LABEL_PT = 11  # chart text size in points: 14-15 px on screen at the page's width (tests/test_browser.py)
CHART_STYLE: dict[RcKeyType, Any] = {"text.parse_math": False, "text.usetex": False}
GRADED_COLOUR, OPTIONAL_COLOUR, FAILURE_COLOUR = "#3b6ea5", "#8a63b3", "#b3261e"


def _svg(fig):
    """The figure as inline SVG with its text kept as text (searchable, sharp, measurable in a browser)."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "rnn-kit"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _figure(width, height):
    from matplotlib.figure import Figure  # here: matplotlib loads in a third of a second

    fig = Figure(figsize=(width, height))
    fig.set_layout_engine("constrained")
    return fig


def class_charts(parts: Sequence[tuple[float, float]], maxima: tuple[float, float],
                 rates: Sequence[tuple[str, float, bool]], common: Sequence[tuple[tuple[str, str], int]]
                 ) -> dict[str, str]:
    """{distribution, pass_rate, failures} as SVG text.

    parts: (graded points, optional points) per scored student; maxima: (graded max, optional max);
    rates: (test label, % passing, optional?) per test; common: ((test label, message), students) pairs.
    """
    from matplotlib import rc_context

    with rc_context(CHART_STYLE):
        return {"distribution": _distribution(parts, maxima), "pass_rate": _pass_rate(rates),
                "failures": _failures(common)}


def _style(ax, integer_axis=None):
    from matplotlib.ticker import MaxNLocator

    if integer_axis is not None:  # a count of students has no fractions
        integer_axis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(labelsize=LABEL_PT)


def _distribution(parts, maxima):
    """A histogram per part that exists (an assignment without an optional part gets one), each on its own scale:
    a bar per tenth of the part's points or so, rounded to 1, 2 or 5 times a power of ten."""
    import numpy as np

    shown = [(i, name, colour) for i, name, colour in ((0, "Graded", GRADED_COLOUR), (1, "Optional", OPTIONAL_COLOUR))
             if maxima[i] > 0]
    fig = _figure(4.5 * max(len(shown), 1) + 0.5 * (len(shown) < 2), 3.6)
    axes = np.atleast_1d(fig.subplots(1, max(len(shown), 1)))
    for ax, (i, name, colour) in zip(axes, shown):
        step = bin_width(maxima[i])
        ax.hist([min(p[i], maxima[i]) for p in parts], bins=np.arange(0, maxima[i] + 1.5 * step, step) - step / 2,
                color=colour, edgecolor="white")
        ax.set_xlim(-0.6 * step, maxima[i] + 0.6 * step)  # half a bar beyond each end
        ax.set_title(f"{name} part (out of {maxima[i]:g})", fontsize=LABEL_PT)
        ax.set_xlabel("points", fontsize=LABEL_PT)
        _style(ax, ax.yaxis)
    axes[0].set_ylabel("students", fontsize=LABEL_PT)
    return _svg(fig)


def bin_width(maximum: float) -> float:
    """About a tenth of `maximum`, as 1, 2 or 5 times a power of ten (0.5 for 3 points, 10 for 100)."""
    import math

    rough = max(maximum, 1e-9) / 10
    power = 10 ** math.floor(math.log10(rough))
    return next(power * m for m in (1, 2, 5, 10) if power * m >= rough)


def _pass_rate(rates):
    fig = _figure(9, 4.2)
    ax = fig.subplots()
    bars = ax.bar(range(len(rates)), [r for _, r, _ in rates],
                  color=[OPTIONAL_COLOUR if optional else GRADED_COLOUR for _, _, optional in rates])
    ax.bar_label(bars, fmt="%.0f%%", fontsize=LABEL_PT)
    ax.set_xticks(range(len(rates)), [for_chart(name) for name, _, _ in rates], rotation=30, ha="right")
    ax.set_ylim(0, 115)
    ax.set_ylabel("% of students passing", fontsize=LABEL_PT)
    ax.set_title("Pass rate per test" + (" (purple: optional)" if any(o for _, _, o in rates) else ""),
                 fontsize=LABEL_PT)
    _style(ax)
    return _svg(fig)


def _failures(common):
    fig = _figure(9, 0.55 * max(len(common), 2) + 1.4)
    ax = fig.subplots()
    # The full messages are in the table below the chart; the chart names the test and the start.
    ticks = [textwrap.shorten(for_chart(f"{test}: {message}"), 58, placeholder="...") for (test, message), _ in common]
    ax.barh(range(len(common)), [n for _, n in common][::-1], color=FAILURE_COLOUR)
    ax.set_yticks(range(len(common)), ticks[::-1])
    ax.set_xlabel("students", fontsize=LABEL_PT)
    ax.set_title("Most common failure messages", fontsize=LABEL_PT)
    _style(ax, ax.xaxis)
    return _svg(fig)


def highest_similarity(best: Iterable[float]) -> str:
    """A histogram of each student's highest score with another student, as SVG."""
    from matplotlib import rc_context

    with rc_context(CHART_STYLE):
        fig = _figure(9, 3.4)
        ax = fig.subplots()
        ax.hist(list(best), bins=[i / 20 for i in range(21)], color=FAILURE_COLOUR, edgecolor="white")
        ax.set_xlim(0, 1)
        ax.set_xlabel("highest score with another student (1 = as alike as the class's most alike pairs get)",
                      fontsize=LABEL_PT)
        ax.set_ylabel("students", fontsize=LABEL_PT)
        ax.set_title("Each student's closest match", fontsize=LABEL_PT)
        _style(ax, ax.yaxis)
        return _svg(fig)
