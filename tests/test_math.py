"""Is every number the notebook grades right? Checked against tests/reference.py and centred differences."""
import json
import os
import sys

import numpy as np
import pytest

import reference as ref
from grader.core import notebook
import rnn_course
from rnn_course import checks_data

SHAPES = [(3, 5, 2, 10, 4), (2, 4, 3, 1, 1), (6, 1, 4, 3, 5)]  # (n_x, n_a, n_y, m, T_x)


@pytest.fixture(scope="module")
def master():
    return checks_data.load_functions(rnn_course.MASTER_NOTEBOOK)


@pytest.mark.parametrize("n_x,n_a,n_y,m,T_x", SHAPES)
def test_reference_rnn_backward_matches_centred_differences(n_x, n_a, n_y, m, T_x):
    """Does the reference rnn_backward give the numerical gradient of rnn_forward's hidden states?"""
    rng = np.random.RandomState(n_x * 100 + T_x)
    x, a0, p, da = rng.randn(n_x, m, T_x), rng.randn(n_a, m), ref.random_rnn(rng, n_x, n_a, n_y), rng.randn(n_a, m, T_x)
    got = ref.rnn_backward(da, ref.rnn_forward(x, a0, p)[2])
    for key, wrt in [("dx", x), ("da0", a0), ("dWax", p["Wax"]), ("dWaa", p["Waa"]), ("dba", p["ba"])]:
        want = ref.centred_difference(lambda: ref.rnn_forward(x, a0, p)[0], wrt, da)
        np.testing.assert_allclose(got[key], want, rtol=1e-6, atol=1e-8, err_msg=key)


@pytest.mark.parametrize("n_x,n_a,n_y,m,T_x", SHAPES)
def test_reference_lstm_backward_matches_centred_differences(n_x, n_a, n_y, m, T_x):
    """Does the reference lstm_backward give the numerical gradient of lstm_forward's hidden states?"""
    rng = np.random.RandomState(n_a * 100 + T_x)
    x, a0, p, da = rng.randn(n_x, m, T_x), rng.randn(n_a, m), ref.random_lstm(rng, n_x, n_a, n_y), rng.randn(n_a, m, T_x)
    got = ref.lstm_backward(da, ref.lstm_forward(x, a0, p)[3])
    for key in ["dx", "da0"] + [k + g for k in ("dW", "db") for g in ref.GATES]:
        wrt = {"dx": x, "da0": a0}.get(key) if key in ("dx", "da0") else p[key[1:]]
        want = ref.centred_difference(lambda: ref.lstm_forward(x, a0, p)[0], wrt, da)
        np.testing.assert_allclose(got[key], want, rtol=1e-6, atol=1e-8, err_msg=key)


def test_reference_lstm_cell_backward_dc_prev_matches_centred_differences():
    """Is dc_prev (which lstm_backward only uses internally) right on its own, for both outputs a and c?"""
    rng = np.random.RandomState(5)
    xt, a_prev, c_prev, p = rng.randn(3, 4), rng.randn(5, 4), rng.randn(5, 4), ref.random_lstm(rng, 3, 5, 2)
    da, dc = rng.randn(5, 4), rng.randn(5, 4)
    got = ref.lstm_cell_backward(da, dc, ref.lstm_cell_forward(xt, a_prev, c_prev, p)[3])
    both = lambda: np.concatenate(ref.lstm_cell_forward(xt, a_prev, c_prev, p)[:2])  # noqa: E731
    want = ref.centred_difference(both, c_prev, np.concatenate([da, dc]))
    np.testing.assert_allclose(got["dc_prev"], want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("n_x,n_a,n_y,m,T_x", SHAPES)
def test_master_solution_agrees_with_reference(master, n_x, n_a, n_y, m, T_x):
    """Does every solution in the master notebook give what the independent derivation gives?"""
    rng = np.random.RandomState(T_x)
    x, a0 = rng.randn(n_x, m, T_x), rng.randn(n_a, m)
    for kind, make in [("rnn", ref.random_rnn), ("lstm", ref.random_lstm)]:
        p = make(rng, n_x, n_a, n_y)
        da = rng.randn(n_a, m, T_x)
        fwd, bwd = f"{kind}_forward", f"{kind}_backward"
        got_fwd, want_fwd = master[fwd](x, a0, p), ref.FUNCTIONS[fwd](x, a0, p)
        for got, want in zip(got_fwd[:-1], want_fwd[:-1]):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        got_bwd = master[bwd](da, got_fwd[-1])
        want_bwd = ref.FUNCTIONS[bwd](da, want_fwd[-1])
        assert set(got_bwd) == set(want_bwd)
        for key in want_bwd:
            np.testing.assert_allclose(got_bwd[key], want_bwd[key], rtol=1e-9, atol=1e-12, err_msg=f"{bwd} {key}")


def _test_cells():
    nb = notebook.read(rnn_course.MASTER_NOTEBOOK)
    return [(notebook.nbgrader_meta(c)["grade_id"], c.source) for c in nb.cells if notebook.nbgrader_meta(c).get("grade")]


@pytest.mark.parametrize("grade_id,source", _test_cells(), ids=[gid for gid, _ in _test_cells()])
def test_every_graded_value_holds_for_the_independent_derivation(grade_id, source, capsys):
    """Do the test cells, visible and hidden parts, pass when the functions are the reference's?

    Every literal expected value in a hidden test, and every value in checks_data.json
    that the visible checks use, must agree with the second derivation.
    """
    namespace = dict(ref.FUNCTIONS, np=np)
    here = os.getcwd()
    sys.path.insert(0, str(rnn_course.SOURCE_DIR))
    os.chdir(rnn_course.SOURCE_DIR)
    try:
        exec(compile(source, grade_id, "exec"), namespace)
    finally:
        os.chdir(here)
        sys.path.remove(str(rnn_course.SOURCE_DIR))
    assert "all checks passed" in capsys.readouterr().out


def test_checks_data_is_what_the_reference_gives():
    """Is every array in checks_data.json (the visible checks' expectations) right?"""
    stored = json.loads(rnn_course.CHECKS_DATA.read_text())
    fresh = checks_data.compute(ref.FUNCTIONS)
    assert set(stored) == set(fresh)
    for case, arrays in fresh.items():
        assert set(stored[case]) == set(arrays), case
        for name, value in arrays.items():
            np.testing.assert_allclose(np.array(stored[case][name]), value, rtol=1e-12, atol=1e-14,
                                       err_msg=f"{case}/{name}")


@pytest.mark.parametrize("name", ["rnn_backward", "rnn_backward_2", "lstm_backward", "lstm_backward_2"])
def test_stored_backward_steps_add_up_to_the_whole_backward_pass(name):
    """The per-step gradients the sequence checks judge a step function against are a decomposition
    of the whole pass: they sum to its weight gradients, give dx step by step, end in da0, and each
    step's upstream gradient is da plus what the later step sent back."""
    stored = json.loads(rnn_course.CHECKS_DATA.read_text())
    steps = {k: np.array(v) for k, v in stored[name + "_steps"].items()}
    whole = {k: np.array(v) for k, v in stored[name + "_grads"].items()}
    for key in whole:
        if key.startswith(("dW", "db")):
            np.testing.assert_allclose(steps[key].sum(axis=-1), whole[key], rtol=1e-10, atol=1e-12, err_msg=key)
    np.testing.assert_allclose(steps["dxt"], whole["dx"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(steps["da_prev"][:, :, 0], whole["da0"], rtol=1e-12, atol=1e-14)
    sys.path.insert(0, str(rnn_course.SOURCE_DIR))
    try:
        import rnn_checks
    finally:
        sys.path.remove(str(rnn_course.SOURCE_DIR))
    case = rnn_checks.seeded_case(name.replace("_2", ""), second=name.endswith("_2"))
    T_x = case["da"].shape[2]
    later = [steps["da_prev"][:, :, t + 1] if t + 1 < T_x else 0 for t in range(T_x)]
    for t in range(T_x):
        np.testing.assert_allclose(steps["da_next"][:, :, t], case["da"][:, :, t] + later[t], rtol=1e-12, atol=1e-14)
        if "dc_next" in steps:
            carried = steps["dc_prev"][:, :, t + 1] if t + 1 < T_x else np.zeros(case["da"].shape[:2])
            np.testing.assert_allclose(steps["dc_next"][:, :, t], carried, rtol=1e-12, atol=1e-14)


def test_checks_data_is_up_to_date_with_the_master():
    """Would `python -m grader checks-data` write the same values from the master's solution?"""
    stored = json.loads(rnn_course.CHECKS_DATA.read_text())
    fresh = json.loads(checks_data.to_json(checks_data.compute(checks_data.load_functions(rnn_course.MASTER_NOTEBOOK))))
    for case in fresh:
        for name in fresh[case]:
            np.testing.assert_allclose(stored[case][name], fresh[case][name], rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- the seed's printed values
# What the original assignment printed, as (case, expression, printed value). ERRATA.md lists those
# that are wrong; every other one must hold for the reference implementation.
SEED_PRINTED = {
    "rnn_cell_backward": [('g["dxt"][1][2]', -0.460564103059), ('g["da_prev"][2][3]', 0.0842968653807),
                          ('g["dWax"][3][1]', 0.393081873922), ('g["dWaa"][1][2]', -0.28483955787),
                          ('g["dba"][4][0]', 0.80517166)],
    "rnn_backward": [('g["dx"][1][2][0]', -2.07101689), ('g["da0"][2][3]', -0.314942375127),
                     ('g["dWax"][3][1]', 11.2641044965), ('g["dWaa"][1][2]', 2.30333312658),
                     ('g["dba"][4][0]', -0.74747722)],
    "lstm_cell_backward": [('g["dxt"][1][2]', 3.23055911511), ('g["da_prev"][2][3]', -0.0639621419711),
                           ('g["dc_prev"][2][3]', 0.797522038797), ('g["dWf"][3][1]', -0.147954838164),
                           ('g["dWi"][1][2]', 1.05749805523), ('g["dWc"][3][1]', 2.30456216369),
                           ('g["dWo"][1][2]', 0.331311595289), ('g["dbf"][4][0]', 0.18864637),
                           ('g["dbi"][4][0]', -0.40142491), ('g["dbc"][4][0]', 0.25587763),
                           ('g["dbo"][4][0]', 0.13893342)],
}
# The seed's lstm_backward printout (run with da of 4 time steps) and its "Expected Output" table.
SEED_LSTM_BACKWARD_PRINTED = {'dx[1][2]': [-0.00173313, 0.08287442, -0.30545663, -0.43281115],
                              'da0[2][3]': -0.095911501954, 'dWf[3][1]': -0.0698198561274,
                              'dWi[1][2]': 0.102371820249, 'dWc[3][1]': -0.0624983794927,
                              'dWo[1][2]': 0.0484389131444, 'dbf[4]': [-0.0565788],
                              'dbi[4]': [-0.15399065], 'dbc[4]': [-0.29691142], 'dbo[4]': [-0.29798344]}
SEED_LSTM_BACKWARD_TABLE_ONLY = {'dbi[4]': [-0.06997391], 'dbc[4]': [-0.27441821], 'dbo[4]': [0.16532821]}


def _seeded_gradients(case, functions):
    sys.path.insert(0, str(rnn_course.SOURCE_DIR))
    try:
        import rnn_checks
    finally:
        sys.path.remove(str(rnn_course.SOURCE_DIR))
    c = rnn_checks.seeded_case(case)
    if case == "rnn_cell_backward":
        return functions["rnn_cell_backward"](c["da_next"], functions["rnn_cell_forward"](c["xt"], c["a_prev"], c["parameters"])[2])
    if case == "rnn_backward":
        return functions["rnn_backward"](c["da"], functions["rnn_forward"](c["x"], c["a0"], c["parameters"])[2])
    if case == "lstm_cell_backward":
        cache = functions["lstm_cell_forward"](c["xt"], c["a_prev"], c["c_prev"], c["parameters"])[3]
        return functions["lstm_cell_backward"](c["da_next"], c["dc_next"], cache)
    raise KeyError(case)


@pytest.mark.parametrize("case", sorted(SEED_PRINTED))
def test_seed_printed_gradients_hold(case):
    """Are the seed's printed backward values, where ERRATA.md does not say otherwise, right?"""
    g = _seeded_gradients(case, ref.FUNCTIONS)
    for expression, printed in SEED_PRINTED[case]:
        assert np.isclose(eval(expression), printed, rtol=1e-6, atol=1e-8), f"{case}: {expression}"


def _seed_lstm_backward_setup():
    """The seed's own lstm_backward test: x of 7 steps, da of 4, drawn right after the parameters."""
    rng = np.random.RandomState(1)
    x, a0 = rng.randn(3, 10, 7), rng.randn(5, 10)
    p = {}
    for g in ("f", "i", "o", "c"):
        p["W" + g], p["b" + g] = rng.randn(5, 8), rng.randn(5, 1)
    p["Wy"], p["by"] = np.zeros((2, 5)), np.zeros((2, 1))  # not drawn in the seed's cell; unused here
    return x, a0, p, rng.randn(5, 10, 4)


def _as_seed_printed(g):
    return {'dx[1][2]': g["dx"][1][2], 'da0[2][3]': g["da0"][2][3], 'dWf[3][1]': g["dWf"][3][1],
            'dWi[1][2]': g["dWi"][1][2], 'dWc[3][1]': g["dWc"][3][1], 'dWo[1][2]': g["dWo"][1][2],
            'dbf[4]': g["dbf"][4], 'dbi[4]': g["dbi"][4], 'dbc[4]': g["dbc"][4], 'dbo[4]': g["dbo"][4]}


def test_seed_lstm_backward_values_come_from_a_loop_without_backpropagation_through_time():
    """ERRATA evidence: the seed's lstm_backward numbers are what its own code gives, which never
    passes da_prev and dc_prev back from step t + 1, and they differ from the true gradient."""
    x, a0, p, da = _seed_lstm_backward_setup()
    steps, _ = ref.lstm_forward(x, a0, p)[3]
    n_a, m, T = da.shape
    buggy = {"dx": np.zeros((3, m, T))}
    for t in reversed(range(T)):
        g = ref.lstm_cell_backward(da[..., t], np.zeros((n_a, m)), steps[t])
        buggy["dx"][..., t] = g["dxt"]
        for key in g:
            if key.startswith(("dW", "db")):
                buggy[key] = buggy.get(key, 0) + g[key]
        buggy["da0"] = g["da_prev"]
    buggy_printed = _as_seed_printed(buggy)
    for key, printed in SEED_LSTM_BACKWARD_PRINTED.items():
        np.testing.assert_allclose(buggy_printed[key], printed, rtol=1e-6, atol=1e-8, err_msg=key)

    correct = _as_seed_printed(ref.lstm_backward(da, (steps[:T], x)))
    for key, printed in SEED_LSTM_BACKWARD_PRINTED.items():
        assert not np.allclose(correct[key], printed, rtol=1e-3), f"{key} should differ from the seed"
    for key, printed in SEED_LSTM_BACKWARD_TABLE_ONLY.items():
        assert not np.allclose(correct[key], printed, rtol=1e-3) and not np.allclose(buggy_printed[key], printed, rtol=1e-3)
