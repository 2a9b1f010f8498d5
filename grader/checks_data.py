"""Build source/<assignment>/checks_data.json: what a correct solution returns on the seeded inputs.

The notebook's visible self-checks compare against these arrays, and the backward
tests build their caches from them, so that no test depends on a student's forward code.
The values come from the master notebook's solution cells; the test suite verifies them
against an independent implementation and numerical gradients.
"""
import importlib.util
import json

import numpy as np

from . import course, notebook


def _load_checks_module():
    spec = importlib.util.spec_from_file_location("rnn_checks", course.SOURCE_DIR / "rnn_checks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stack(caches, index):
    return np.stack([step[index] for step in caches], axis=2)


def compute(functions):
    """The dict written to checks_data.json, computed with the given notebook functions."""
    seeded_case = _load_checks_module().seeded_case
    f = functions
    data = {}

    c = seeded_case("rnn_cell_forward")
    a_next, yt_pred, _ = f["rnn_cell_forward"](c["xt"], c["a_prev"], c["parameters"])
    data["rnn_cell_forward"] = {"a_next": a_next, "yt_pred": yt_pred}

    c = seeded_case("rnn_forward")
    a, y_pred, _ = f["rnn_forward"](c["x"], c["a0"], c["parameters"])
    data["rnn_forward"] = {"a": a, "y_pred": y_pred}

    c = seeded_case("lstm_cell_forward")
    a_next, c_next, yt, cache = f["lstm_cell_forward"](c["xt"], c["a_prev"], c["c_prev"], c["parameters"])
    data["lstm_cell_forward"] = {"a_next": a_next, "c_next": c_next, "yt": yt,
                                 "ft": cache[4], "it": cache[5], "cct": cache[6], "ot": cache[7]}

    c = seeded_case("lstm_forward")
    a, y, c_states, _ = f["lstm_forward"](c["x"], c["a0"], c["parameters"])
    data["lstm_forward"] = {"a": a, "y": y, "c": c_states}

    c = seeded_case("rnn_cell_backward")
    a_next, _, cache = f["rnn_cell_forward"](c["xt"], c["a_prev"], c["parameters"])
    data["rnn_cell_backward"] = {"a_next": a_next}
    data["rnn_cell_backward_grads"] = f["rnn_cell_backward"](c["da_next"], cache)

    c = seeded_case("rnn_backward")
    a, _, caches = f["rnn_forward"](c["x"], c["a0"], c["parameters"])
    data["rnn_backward"] = {"a": a}
    data["rnn_backward_grads"] = f["rnn_backward"](c["da"], caches)

    c = seeded_case("lstm_cell_backward")
    _, _, _, cache = f["lstm_cell_forward"](c["xt"], c["a_prev"], c["c_prev"], c["parameters"])
    data["lstm_cell_backward"] = dict(zip(["a_next", "c_next", "ft", "it", "cct", "ot"],
                                          [cache[i] for i in (0, 1, 4, 5, 6, 7)]))
    data["lstm_cell_backward_grads"] = f["lstm_cell_backward"](c["da_next"], c["dc_next"], cache)

    c = seeded_case("lstm_backward")
    _, _, _, (steps, _) = f["lstm_forward"](c["x"], c["a0"], c["parameters"])
    data["lstm_backward"] = {name: _stack(steps, i) for name, i in
                             [("a", 0), ("c", 1), ("ft", 4), ("it", 5), ("cct", 6), ("ot", 7)]}
    data["lstm_backward_grads"] = f["lstm_backward"](c["da"], (steps, c["x"]))
    return data


def to_json(data):
    # 15 significant digits: exact enough for any check, and the same on every machine's BLAS.
    def rounded(array):
        return np.vectorize(lambda v: float(f"{v:.15g}"))(np.asarray(array, dtype=float)).tolist()
    plain = {case: {name: rounded(value) for name, value in arrays.items()} for case, arrays in data.items()}
    return json.dumps(plain, indent=1, sort_keys=True) + "\n"


def write(path=course.CHECKS_DATA, master=course.MASTER_NOTEBOOK):
    text = to_json(compute(notebook.load_functions(master)))
    path.write_text(text)
    return path
