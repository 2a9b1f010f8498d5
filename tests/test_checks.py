"""Do the visible self-checks tell a student what is wrong and where?"""
import sys

import numpy as np
import pytest

import reference as ref
from grader import course

sys.path.insert(0, str(course.SOURCE_DIR))
import rnn_checks  # noqa: E402
import rnn_utils  # noqa: E402


def _failure(check, result, case):
    with pytest.raises(rnn_checks.CheckFailed) as info:
        check(result, case)
    return str(info.value)


def test_sigmoid_for_tanh_is_named():
    case = rnn_checks.seeded_case("rnn_cell_forward")
    p = case["parameters"]
    a_next = rnn_utils.sigmoid(p["Waa"] @ case["a_prev"] + p["Wax"] @ case["xt"] + p["ba"])
    yt = rnn_utils.softmax(p["Wya"] @ a_next + p["by"])
    message = _failure(rnn_checks.check_rnn_cell_forward, (a_next, yt, (a_next, case["a_prev"], case["xt"], p)), case)
    assert "sigmoid" in message and "a_next" in message


def test_wrong_shape_names_the_expected_one_in_dimension_names():
    case = rnn_checks.seeded_case("rnn_cell_forward")
    a_next, yt, cache = ref.rnn_cell_forward(case["xt"], case["a_prev"], case["parameters"])
    message = _failure(rnn_checks.check_rnn_cell_forward, (a_next.T, yt, cache), case)
    assert "(10, 5)" in message and "(5, 10)" in message and "(n_a, m)" in message


def test_swapped_gates_are_named():
    case = rnn_checks.seeded_case("lstm_cell_forward")
    a, c, y, cache = ref.lstm_cell_forward(case["xt"], case["a_prev"], case["c_prev"], case["parameters"])
    swapped = cache[:4] + (cache[5], cache[4]) + cache[6:]
    message = _failure(rnn_checks.check_lstm_cell_forward, (a, c, y, swapped), case)
    assert "ft" in message and "swapped" in message


def test_hidden_state_not_carried_names_the_time_step():
    case = rnn_checks.seeded_case("rnn_forward")
    x, a0, p = case["x"], case["a0"], case["parameters"]
    a = np.stack([ref.rnn_cell_forward(x[:, :, t], a0, p)[0] for t in range(4)], axis=2)
    y = np.stack([ref.rnn_cell_forward(x[:, :, t], a0, p)[1] for t in range(4)], axis=2)
    message = _failure(rnn_checks.check_rnn_forward, (a, y, ([], x)), case)
    assert "time step t = 1" in message and "previous step" in message


def test_missing_backprop_through_time_is_named():
    case = rnn_checks.seeded_case("lstm_backward")
    caches = rnn_checks.lstm_caches(case)
    steps, _ = caches
    n_a, m, T = case["da"].shape
    g = ref.lstm_backward(case["da"], caches)
    for t in range(T):  # what a loop that never carries da_prev and dc_prev gives for dx
        g["dx"][:, :, t] = ref.lstm_cell_backward(case["da"][:, :, t], np.zeros((n_a, m)), steps[t])["dxt"]
    message = lambda: rnn_checks.check_lstm_backward(g, case)  # noqa: E731
    with pytest.raises(rnn_checks.CheckFailed, match="da_prev from step t \\+ 1"):
        message()


def test_missing_gradient_key_is_named():
    case = rnn_checks.seeded_case("rnn_cell_backward")
    g = ref.rnn_cell_backward(case["da_next"], rnn_checks.rnn_cell_cache(case))
    del g["dba"]
    with pytest.raises(rnn_checks.CheckFailed, match="missing the key"):
        rnn_checks.check_rnn_cell_backward(g, case)


def test_warnings_become_notes_on_stdout(capsys):
    import warnings
    with rnn_checks.warnings_as_notes():
        warnings.warn("overflow encountered in exp", RuntimeWarning)
        print("to stderr", file=sys.stderr)
    out, err = capsys.readouterr()
    assert err == ""
    assert "RuntimeWarning: overflow encountered in exp" in out and "to stderr" in out


def test_provided_sigmoid_never_overflows():
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is silent by default
        values = rnn_utils.sigmoid(np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0]))
    np.testing.assert_allclose(values, [0.0, 1 / (1 + np.exp(30)), 0.5, 1 / (1 + np.exp(-30)), 1.0])


def test_gradient_checker_catches_a_wrong_gradient(capsys):
    rng = np.random.RandomState(0)
    xt, a_prev, p, da = rng.randn(2, 3), rng.randn(4, 3), ref.random_rnn(rng, 2, 4, 2), rng.randn(4, 3)
    grads = ref.rnn_cell_backward(da, ref.rnn_cell_forward(xt, a_prev, p)[2])
    forward = lambda: ref.rnn_cell_forward(xt, a_prev, p)[0]  # noqa: E731
    assert rnn_utils.gradient_check(forward, grads, {"dxt": xt, "dWaa": p["Waa"]}, da)
    grads["dWaa"] = grads["dWaa"] * 1.01
    assert not rnn_utils.gradient_check(forward, grads, {"dWaa": p["Waa"]}, da)
    assert "FAIL" in capsys.readouterr().out


def test_a_copied_parameters_dict_in_the_cache_is_accepted():
    """Does a cache holding a copy of `parameters` (not the same object) pass, and a wrong entry fail clearly?"""
    case = rnn_checks.seeded_case("rnn_cell_forward")
    a_next, yt, _ = ref.rnn_cell_forward(case["xt"], case["a_prev"], case["parameters"])
    copied = {k: v.copy() for k, v in case["parameters"].items()}
    rnn_checks.check_rnn_cell_forward((a_next, yt, (a_next, case["a_prev"], case["xt"], copied)), case)
    message = _failure(rnn_checks.check_rnn_cell_forward, (a_next, yt, (a_next, case["a_prev"], case["xt"], {})), case)
    assert "parameters dict" in message
