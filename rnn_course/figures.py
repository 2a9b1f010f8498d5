"""Draw the notebook's Figures 1-5 (block diagrams) with matplotlib.

`rnn-grader figures` rewrites source/<assignment>/images/*.png. The drawing
is deterministic: the same matplotlib version writes the same bytes.
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from . import IMAGES_DIR  # noqa: E402

CELL = "#dbe8f6"
OP = "#fbe3c8"
GATE = "#f6d1d1"
INK = "#1f2d3d"
BACK = "#c0392b"


def _canvas(width, height):
    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def _box(ax, x, y, w, h, text, color=CELL, size=11):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.12",
                                facecolor=color, edgecolor=INK, linewidth=1.2))
    ax.text(x, y, text, ha="center", va="center", fontsize=size, color=INK)


def _arrow(ax, start, end, color=INK, text=None, offset=(0, 0.18), style="-|>", rad=0.0, size=10):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color=color,
                                 linewidth=1.3, connectionstyle=f"arc3,rad={rad}"))
    if text:
        ax.text((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1], text,
                ha="center", va="center", fontsize=size, color=color)


def _label(ax, x, y, text, size=11, color=INK):
    ax.text(x, y, text, ha="center", va="center", fontsize=size, color=color)


def figure1_basic_rnn():
    fig, ax = _canvas(9.5, 3.6)
    xs = [1.9, 3.9, 5.9, 8.4]
    names = ["1", "2", "3", "T_x"]
    _label(ax, 0.45, 1.8, r"$a^{\langle 0 \rangle}$")
    previous = (0.75, 1.8)
    for i, (x, n) in enumerate(zip(xs, names)):
        if n == "T_x":
            _label(ax, 7.15, 1.8, r"$\cdots$", size=16)
            previous = (7.45, 1.8)
        _box(ax, x, 1.8, 1.1, 0.8, "RNN\ncell", size=10)
        _arrow(ax, previous, (x - 0.57, 1.8), text=None if i == 0 else rf"$a^{{\langle {int(n) - 1 if n != 'T_x' else 'T_x-1'} \rangle}}$" if n != "T_x" else None)
        _arrow(ax, (x, 0.55), (x, 1.38))
        _label(ax, x, 0.3, rf"$x^{{\langle {n} \rangle}}$")
        _arrow(ax, (x, 2.22), (x, 2.95))
        _label(ax, x, 3.25, rf"$\hat{{y}}^{{\langle {n} \rangle}}$")
        previous = (x + 0.57, 1.8)
    _arrow(ax, (6.47, 1.8), (6.95, 1.8))
    fig.suptitle("Figure 1: the same cell at every time step, passing its hidden state on", fontsize=10, y=0.06)
    return fig


def figure2_rnn_cell():
    fig, ax = _canvas(8.5, 4.6)
    _label(ax, 0.5, 2.0, r"$a^{\langle t-1 \rangle}$")
    _label(ax, 3.0, 0.3, r"$x^{\langle t \rangle}$")
    _box(ax, 2.3, 2.0, 1.5, 0.6, r"$W_{aa}\,a^{\langle t-1 \rangle}$", OP, 10)
    _box(ax, 3.0, 1.1, 1.3, 0.55, r"$W_{ax}\,x^{\langle t \rangle}$", OP, 10)
    _box(ax, 4.1, 2.0, 0.55, 0.55, r"$+$", OP)
    _label(ax, 4.1, 2.55, r"$+\,b_a$", size=10)
    _box(ax, 5.3, 2.0, 0.9, 0.55, "tanh", GATE, 10)
    _arrow(ax, (0.95, 2.0), (1.53, 2.0))
    _arrow(ax, (3.06, 2.0), (3.82, 2.0))
    _arrow(ax, (3.0, 0.5), (3.0, 0.82))
    _arrow(ax, (3.6, 1.25), (3.9, 1.77))
    _arrow(ax, (4.38, 2.0), (4.85, 2.0))
    _arrow(ax, (5.75, 2.0), (7.6, 2.0))
    _label(ax, 8.0, 2.0, r"$a^{\langle t \rangle}$")
    _box(ax, 6.6, 3.05, 2.2, 0.55, r"softmax$(W_{ya}\,a^{\langle t \rangle} + b_y)$", GATE, 10)
    _arrow(ax, (6.6, 2.0), (6.6, 2.77))
    _arrow(ax, (6.6, 3.33), (6.6, 3.95))
    _label(ax, 6.6, 4.25, r"$\hat{y}^{\langle t \rangle}$")
    fig.suptitle(r"Figure 2: $a^{\langle t \rangle} = \tanh(W_{aa} a^{\langle t-1 \rangle} + W_{ax} x^{\langle t \rangle}"
                 r" + b_a)$, $\hat{y}^{\langle t \rangle} = $softmax$(W_{ya} a^{\langle t \rangle} + b_y)$",
                 fontsize=10, y=0.06)
    return fig


def _lstm_cell(ax, x0, y0, scale=1.0, detail=True):
    """An LSTM cell whose lower-left corner is (x0, y0); returns its input/output points."""
    w, h = 5.6 * scale, 3.4 * scale
    ax.add_patch(FancyBboxPatch((x0, y0), w, h, boxstyle="round,pad=0.02,rounding_size=0.2",
                                facecolor="#f4f8fc", edgecolor=INK, linewidth=1.2))
    top, mid = y0 + h - 0.55 * scale, y0 + 1.0 * scale
    if detail:
        gates = [(r"$\Gamma_f$" "\n" r"$\sigma$", 0.9), (r"$\Gamma_u$" "\n" r"$\sigma$", 1.9),
                 (r"$\tilde{c}$" "\n" "tanh", 2.9), (r"$\Gamma_o$" "\n" r"$\sigma$", 3.9)]
        for text, gx in gates:
            _box(ax, x0 + gx * scale, mid, 0.72 * scale, 0.75 * scale, text, GATE, 9)
        ax.plot([x0 + 0.3 * scale, x0 + 4.2 * scale], [y0 + 0.3 * scale] * 2, color=INK, lw=1.2)
        for _, gx in gates:
            _arrow(ax, (x0 + gx * scale, y0 + 0.3 * scale), (x0 + gx * scale, mid - 0.38 * scale))
        _box(ax, x0 + 0.9 * scale, top, 0.4 * scale, 0.4 * scale, r"$\times$", OP, 10)
        _box(ax, x0 + 2.4 * scale, top, 0.4 * scale, 0.4 * scale, r"$+$", OP, 10)
        _box(ax, x0 + 2.4 * scale, mid + 0.95 * scale, 0.4 * scale, 0.4 * scale, r"$\times$", OP, 10)
        _box(ax, x0 + 4.6 * scale, mid + 0.8 * scale, 0.4 * scale, 0.4 * scale, r"$\times$", OP, 10)
        _box(ax, x0 + 4.6 * scale, top - 0.48 * scale, 0.7 * scale, 0.34 * scale, "tanh", GATE, 8)
        _arrow(ax, (x0 + 0.9 * scale, mid + 0.38 * scale), (x0 + 0.9 * scale, top - 0.2 * scale))
        _arrow(ax, (x0 + 1.9 * scale, mid + 0.38 * scale), (x0 + 2.2 * scale, mid + 0.95 * scale))
        _arrow(ax, (x0 + 2.9 * scale, mid + 0.38 * scale), (x0 + 2.6 * scale, mid + 0.95 * scale))
        _arrow(ax, (x0 + 2.4 * scale, mid + 1.15 * scale), (x0 + 2.4 * scale, top - 0.2 * scale))
        _arrow(ax, (x0 + 1.1 * scale, top), (x0 + 2.2 * scale, top))
        ax.plot([x0 + 2.6 * scale, x0 + w], [top, top], color=INK, lw=1.3)
        _arrow(ax, (x0 + 4.6 * scale, top), (x0 + 4.6 * scale, top - 0.31 * scale))
        _arrow(ax, (x0 + 4.6 * scale, top - 0.65 * scale), (x0 + 4.6 * scale, mid + 1.0 * scale))
        _arrow(ax, (x0 + 3.9 * scale, mid + 0.38 * scale), (x0 + 4.4 * scale, mid + 0.8 * scale))
    else:
        _label(ax, x0 + w / 2, y0 + h / 2, "LSTM\ncell", size=10)
    return {"c_in": (x0, top), "c_out": (x0 + w, top), "a_in": (x0, y0 + 0.3 * scale),
            "a_out": (x0 + w, y0 + 0.3 * scale), "x_in": (x0 + w / 2, y0), "y_out": (x0 + w * 0.82, y0 + h),
            "a_tap": (x0 + 4.6 * scale, mid + 0.8 * scale)}


def figure3_lstm_cell():
    fig, ax = _canvas(9.0, 5.6)
    p = _lstm_cell(ax, 1.7, 1.1)
    _arrow(ax, (0.5, p["c_in"][1]), (2.45, p["c_in"][1]))
    _label(ax, 0.4, p["c_in"][1] + 0.3, r"$c^{\langle t-1 \rangle}$")
    _arrow(ax, (0.5, p["a_in"][1]), (2.0, p["a_in"][1]))
    _label(ax, 0.4, p["a_in"][1] + 0.3, r"$a^{\langle t-1 \rangle}$")
    _arrow(ax, (1.75, 0.2), (1.75, p["a_in"][1]), text=None)
    _label(ax, 1.3, 0.35, r"$x^{\langle t \rangle}$")
    ax.text(3.7, 1.25, r"each gate reads $[a^{\langle t-1 \rangle}; x^{\langle t \rangle}]$", fontsize=8, color=INK)
    _arrow(ax, (p["c_out"][0], p["c_in"][1]), (8.5, p["c_in"][1]))
    _label(ax, 8.4, p["c_in"][1] + 0.3, r"$c^{\langle t \rangle}$")
    _arrow(ax, (p["a_tap"][0] + 0.2, p["a_tap"][1]), (8.5, p["a_tap"][1]))
    _label(ax, 8.4, p["a_tap"][1] - 0.3, r"$a^{\langle t \rangle}$")
    _arrow(ax, (7.6, p["a_tap"][1]), (7.6, 5.1))
    _label(ax, 7.95, 5.2, r"$\hat{y}^{\langle t \rangle}$ (softmax)", size=9)
    fig.suptitle(r"Figure 3: $c^{\langle t \rangle} = \Gamma_f * c^{\langle t-1 \rangle} + \Gamma_u * \tilde{c}$,"
                 r"  $a^{\langle t \rangle} = \Gamma_o * \tanh(c^{\langle t \rangle})$", fontsize=10, y=0.06)
    return fig


def figure4_lstm_over_time():
    fig, ax = _canvas(10.0, 3.8)
    xs = [1.2, 4.0, 7.6]
    names = ["1", "2", "T_x"]
    c_line, a_line = 1.8, 1.1
    _label(ax, 0.45, c_line, r"$c^{\langle 0 \rangle}$", size=10)
    _label(ax, 0.45, a_line, r"$a^{\langle 0 \rangle}$", size=10)
    for i, (x, n) in enumerate(zip(xs, names)):
        _lstm_cell(ax, x, 0.8, scale=0.38, detail=False)
        left = 0.75 if i == 0 else (7.05 if n == "T_x" else xs[i - 1] + 2.13)
        _arrow(ax, (left, c_line), (x, c_line), color="#5b7fa6")
        _arrow(ax, (left, a_line), (x, a_line))
        _arrow(ax, (x + 1.06, 0.25), (x + 1.06, 0.8))
        _label(ax, x + 1.06, 0.1, rf"$x^{{\langle {n} \rangle}}$")
        _arrow(ax, (x + 1.06, 2.1), (x + 1.06, 3.35))
        _label(ax, x + 1.06, 3.6, rf"$\hat{{y}}^{{\langle {n} \rangle}}$")
    _arrow(ax, (6.13, c_line), (6.6, c_line), color="#5b7fa6")
    _arrow(ax, (6.13, a_line), (6.6, a_line))
    _label(ax, 6.83, 1.45, r"$\cdots$", size=16)
    _label(ax, 3.6, c_line + 0.2, r"$c^{\langle 1 \rangle}$", size=9, color="#5b7fa6")
    _label(ax, 3.6, a_line + 0.2, r"$a^{\langle 1 \rangle}$", size=9)
    fig.suptitle("Figure 4: each step passes both the hidden state a and the cell state c (blue) to the next",
                 fontsize=10, y=0.06)
    return fig


def figure5_rnn_cell_backward():
    fig, ax = _canvas(9.0, 4.8)
    _box(ax, 2.3, 2.2, 1.6, 0.6, r"$W_{aa} a^{\langle t-1 \rangle}$" "\n" r"$+ W_{ax} x^{\langle t \rangle} + b_a$", OP, 9)
    _box(ax, 5.0, 2.2, 0.9, 0.55, "tanh", GATE, 10)
    _arrow(ax, (3.1, 2.3), (4.55, 2.3))
    _arrow(ax, (5.45, 2.3), (7.8, 2.3))
    _label(ax, 8.3, 2.3, r"$a^{\langle t \rangle}$")
    _label(ax, 0.5, 2.3, r"$a^{\langle t-1 \rangle}$")
    _arrow(ax, (0.9, 2.3), (1.5, 2.3))
    _arrow(ax, (2.3, 0.8), (2.3, 1.9))
    _label(ax, 2.3, 0.55, r"$x^{\langle t \rangle}$")
    # Backward, in red, below the forward arrows.
    _arrow(ax, (7.8, 2.0), (5.45, 2.0), color=BACK, text=r"$da_{next}$", offset=(0, -0.25))
    _arrow(ax, (4.55, 2.0), (3.1, 2.0), color=BACK, text=r"$dz = da_{next} * (1 - (a^{\langle t \rangle})^2)$",
           offset=(0.1, -0.55), size=9)
    _arrow(ax, (1.5, 2.0), (0.9, 2.0), color=BACK)
    _label(ax, 0.9, 1.6, r"$da_{prev} = W_{aa}^T dz$", size=9, color=BACK)
    _arrow(ax, (2.05, 1.9), (2.05, 0.9), color=BACK)
    _label(ax, 1.0, 0.6, r"$dx^{\langle t \rangle} = W_{ax}^T dz$", size=9, color=BACK)
    _label(ax, 4.6, 3.95, r"$dW_{ax} = dz\,(x^{\langle t \rangle})^T \quad dW_{aa} = dz\,(a^{\langle t-1 \rangle})^T"
                          r" \quad db_a = \sum_{examples} dz$", size=10, color=BACK)
    _arrow(ax, (2.6, 2.55), (3.2, 3.7), color=BACK)
    fig.suptitle("Figure 5: the gradient (red) flows back through tanh to the inputs and the parameters",
                 fontsize=10, y=0.06)
    return fig


FIGURES = {
    "figure1_basic_rnn.png": figure1_basic_rnn,
    "figure2_rnn_cell.png": figure2_rnn_cell,
    "figure3_lstm_cell.png": figure3_lstm_cell,
    "figure4_lstm_over_time.png": figure4_lstm_over_time,
    "figure5_rnn_cell_backward.png": figure5_rnn_cell_backward,
}


def draw_all(out_dir=IMAGES_DIR):
    """Write every figure to out_dir; return the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in FIGURES.items():
        fig = draw()
        path = out_dir / name
        # No 'Software' stamp: the bytes depend on the drawing only.
        fig.savefig(path, metadata={"Software": None})
        plt.close(fig)
        paths.append(path)
    return paths
