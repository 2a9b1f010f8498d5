"""Build source/<assignment>/checks_data.json: what a correct solution returns on the seeded inputs.

The notebook's visible self-checks compare against these arrays, and the backward
tests build their caches from them, so that no test depends on a student's forward code.
The values come from the master notebook's solution cells; the test suite verifies them
against an independent implementation and numerical gradients.
"""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

from grader.core import notebook

from . import CHECKS_DATA, MASTER_NOTEBOOK, SOURCE_DIR


def _load_checks_module():
    spec = importlib.util.spec_from_file_location("rnn_checks", SOURCE_DIR / "rnn_checks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stack(caches, index):
    return np.stack([step[index] for step in caches], axis=2)


def _stack_dicts(dicts):
    """One dict of arrays, each stacked over the list along a new last axis (the time step)."""
    return {key: np.stack([d[key] for d in dicts], axis=-1) for key in dicts[0]}


def _backward_steps(f, step_function, da, caches, carries):
    """What a correct step function gets and returns at each time step of a backward pass.

    carries -- the upstream gradients the step takes besides da: ("da_next",) or ("da_next", "dc_next").
    Stored per time step t, so that a sequence check can judge the student's step function
    on the very inputs their sequence function should give it.
    """
    n_a, m, T_x = da.shape
    carried = {"da_prev": np.zeros((n_a, m)), "dc_prev": np.zeros((n_a, m))}
    steps = [None] * T_x
    for t in reversed(range(T_x)):
        upstream = {"da_next": da[:, :, t] + carried["da_prev"], "dc_next": carried["dc_prev"]}
        arguments = [upstream[k] for k in carries]
        gradients = f[step_function](*arguments, caches[t])
        carried = {k: gradients.get(k, carried[k]) for k in carried}
        steps[t] = {**{k: upstream[k] for k in carries}, **gradients}
    return _stack_dicts(steps)


def compute(functions):
    """The dict written to checks_data.json, computed with the given notebook functions.

    Each exercise has two cases: its seeded input (id = its name) and a second input of other
    sizes (id = name + "_2"); see rnn_checks.seeded_case.
    """
    seeded_case = _load_checks_module().seeded_case
    f = functions
    data = {}
    for second in (False, True):
        def case(name):
            c = seeded_case(name, second)
            return c, c["id"]

        c, key = case("rnn_cell_forward")
        a_next, yt_pred, _ = f["rnn_cell_forward"](c["xt"], c["a_prev"], c["parameters"])
        data[key] = {"a_next": a_next, "yt_pred": yt_pred}

        c, key = case("rnn_forward")
        a, y_pred, _ = f["rnn_forward"](c["x"], c["a0"], c["parameters"])
        data[key] = {"a": a, "y_pred": y_pred}

        c, key = case("lstm_cell_forward")
        a_next, c_next, yt, cache = f["lstm_cell_forward"](c["xt"], c["a_prev"], c["c_prev"], c["parameters"])
        data[key] = {"a_next": a_next, "c_next": c_next, "yt": yt,
                     "ft": cache[4], "it": cache[5], "cct": cache[6], "ot": cache[7]}

        c, key = case("lstm_forward")
        a, y, c_states, (steps, _) = f["lstm_forward"](c["x"], c["a0"], c["parameters"])
        data[key] = {"a": a, "y": y, "c": c_states,
                     **{name: _stack(steps, i) for name, i in [("ft", 4), ("it", 5), ("cct", 6), ("ot", 7)]}}

        c, key = case("rnn_cell_backward")
        a_next, _, cache = f["rnn_cell_forward"](c["xt"], c["a_prev"], c["parameters"])
        data[key] = {"a_next": a_next}
        data[key + "_grads"] = f["rnn_cell_backward"](c["da_next"], cache)

        c, key = case("rnn_backward")
        a, _, caches = f["rnn_forward"](c["x"], c["a0"], c["parameters"])
        data[key] = {"a": a}
        data[key + "_grads"] = f["rnn_backward"](c["da"], caches)
        data[key + "_steps"] = _backward_steps(f, "rnn_cell_backward", c["da"], caches[0], ("da_next",))

        c, key = case("lstm_cell_backward")
        _, _, _, cache = f["lstm_cell_forward"](c["xt"], c["a_prev"], c["c_prev"], c["parameters"])
        data[key] = dict(zip(["a_next", "c_next", "ft", "it", "cct", "ot"], [cache[i] for i in (0, 1, 4, 5, 6, 7)]))
        data[key + "_grads"] = f["lstm_cell_backward"](c["da_next"], c["dc_next"], cache)

        c, key = case("lstm_backward")
        _, _, _, (steps, _) = f["lstm_forward"](c["x"], c["a0"], c["parameters"])
        data[key] = {name: _stack(steps, i) for name, i in
                     [("a", 0), ("c", 1), ("ft", 4), ("it", 5), ("cct", 6), ("ot", 7)]}
        data[key + "_grads"] = f["lstm_backward"](c["da"], (steps, c["x"]))
        data[key + "_steps"] = _backward_steps(f, "lstm_cell_backward", c["da"], steps, ("da_next", "dc_next"))
    return data


def to_json(data):
    # 15 significant digits: exact enough for any check, and the same on every machine's BLAS.
    def rounded(array):
        return np.vectorize(lambda v: float(f"{v:.15g}"))(np.asarray(array, dtype=float)).tolist()
    plain = {case: {name: rounded(value) for name, value in arrays.items()} for case, arrays in data.items()}
    return json.dumps(plain, indent=1, sort_keys=True) + "\n"


def write(path=CHECKS_DATA, master=MASTER_NOTEBOOK):
    text = to_json(compute(load_functions(master)))
    path.write_text(text)
    return path


def load_functions(path):
    """The namespace this assignment's notebook at `path` defines, its tests left out: its 'imports' cell (this
    assignment's name for it) and its solution cells run in a fresh namespace, in order (the master's reference
    solution, or a student's answers)."""
    path = Path(path)
    nb = notebook.read(path)
    namespace = {"__name__": "notebook_functions"}
    sys.path.insert(0, str(path.parent))
    try:
        for cell in nb.cells:
            meta = notebook.nbgrader_meta(cell)
            if cell.cell_type == "code" and (meta.get("solution") or meta.get("grade_id") == "imports"):
                exec(compile(cell.source, f"{path.name}:{meta.get('grade_id')}", "exec"), namespace)
    finally:
        sys.path.remove(str(path.parent))
    return namespace
