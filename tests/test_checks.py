"""Do the visible self-checks tell a student what is wrong and where?"""
import sys

import numpy as np
import pytest

import reference as ref
import rnn_course

sys.path.insert(0, str(rnn_course.SOURCE_DIR))
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


def test_gradient_checker_catches_a_wrong_gradient_and_prints_only_what_to_read(capsys):
    rng = np.random.RandomState(0)
    xt, a_prev, p, da = rng.randn(2, 3), rng.randn(4, 3), ref.random_rnn(rng, 2, 4, 2), rng.randn(4, 3)
    grads = ref.rnn_cell_backward(da, ref.rnn_cell_forward(xt, a_prev, p)[2])
    forward = lambda: ref.rnn_cell_forward(xt, a_prev, p)[0]  # noqa: E731
    assert rnn_utils.gradient_check(forward, grads, {"dxt": xt, "dWaa": p["Waa"]}, da) is None  # no stray True
    assert "All 2 gradients agree" in capsys.readouterr().out
    grads["dWaa"] = grads["dWaa"] * 1.01
    rnn_utils.gradient_check(forward, grads, {"dWaa": p["Waa"]}, da)
    out = capsys.readouterr().out
    assert "FAIL" in out and "1 of 1 gradients disagree" in out and "fix the forward function first" in out


def test_random_directions_catch_every_single_element_the_element_by_element_comparison_catches():
    """The hidden tests compare each gradient with centred differences along two random directions, not
    element by element. On an LSTM of the hidden tests' sizes, a gradient with any one element zeroed,
    negated or off by a thousandth of its largest element fails, wherever the element is, whenever the
    element-by-element comparison (rtol 1e-5) fails it; the right gradients pass."""
    rng = np.random.RandomState(11)
    x, a0, da = rng.randn(3, 2, 3), rng.randn(5, 2), rng.randn(5, 2, 3)
    p = ref.random_lstm(rng, 3, 5, 2)
    g = ref.lstm_backward(da, ref.lstm_forward(x, a0, p)[3])
    forward = lambda: ref.lstm_forward(x, a0, p)[0]  # noqa: E731
    caught = 0
    for key, wrt in [("dx", x), ("da0", a0)] + [("d" + k, p[k]) for k in ("Wf", "Wi", "Wc", "Wo", "bf", "bo")]:
        assert rnn_utils.gradient_agrees(forward, wrt, da, g[key], seed=11), key
        for index in np.ndindex(wrt.shape):
            for wrong in (0.0, -g[key][index], g[key][index] + 1e-3 * np.abs(g[key]).max()):
                bad = g[key].copy()
                bad[index] = wrong
                if not np.allclose(bad, g[key], rtol=1e-5, atol=1e-7):
                    assert not rnn_utils.gradient_agrees(forward, wrt, da, bad, seed=11), (key, index, wrong)
                    caught += 1
    assert caught > 400


def test_gradient_checker_restores_its_input_when_the_function_raises():
    x = np.arange(4.0).reshape(2, 2)
    before = x.copy()
    calls = []

    def forward():
        calls.append(1)
        if len(calls) == 3:
            raise ValueError("the student's forward failed")
        return x * 2

    with pytest.raises(ValueError):
        rnn_utils.numerical_gradient(forward, x, np.ones((2, 2)))
    assert np.array_equal(x, before), "the input was left nudged"


def test_gradient_checker_does_not_fail_tiny_correct_gradients(capsys):
    """A long sequence's da0 is tiny: rounding alone gives it a large relative error. The absolute
    floor keeps a correct gradient from being reported as a FAIL."""
    rng = np.random.RandomState(1)
    x, a0, da = rng.randn(2, 3, 30), rng.randn(4, 3), rng.randn(4, 3, 30)
    p = ref.random_rnn(rng, 2, 4, 2)
    p["Waa"] /= 4  # a contracting recurrence: the gradient reaching a0 from 30 steps away vanishes
    da[:, :, :-1] = 0  # only the last step's output matters
    grads = ref.rnn_backward(da, ref.rnn_forward(x, a0, p)[2])
    assert np.abs(grads["da0"]).max() < 1e-6
    rnn_utils.gradient_check(lambda: ref.rnn_forward(x, a0, p)[0], grads, {"da0": a0}, da)
    assert "FAIL" not in capsys.readouterr().out


def test_a_copied_parameters_dict_in_the_cache_is_accepted():
    """Does a cache holding a copy of `parameters` (not the same object) pass, and a wrong entry fail clearly?"""
    case = rnn_checks.seeded_case("rnn_cell_forward")
    a_next, yt, _ = ref.rnn_cell_forward(case["xt"], case["a_prev"], case["parameters"])
    copied = {k: v.copy() for k, v in case["parameters"].items()}
    rnn_checks.check_rnn_cell_forward((a_next, yt, (a_next, case["a_prev"], case["xt"], copied)), case)
    message = _failure(rnn_checks.check_rnn_cell_forward, (a_next, yt, (a_next, case["a_prev"], case["xt"], {})), case)
    assert "parameters dict" in message


# ------------------------------------------------------------- issue 9: the typical mistakes

def _run_test_cell(grade_id, functions, drop_visible_check=False):
    """Run the master's test cell `grade_id` (visible and hidden parts) with `functions`."""
    import os
    from grader.core import notebook
    cell = notebook.cell_by_id(notebook.read(rnn_course.MASTER_NOTEBOOK), grade_id)
    source = cell.source
    if drop_visible_check:
        source = "\n".join(line for line in source.splitlines() if not line.startswith("check_"))
    namespace = dict(ref.FUNCTIONS, np=np)
    namespace.update(functions)
    here = os.getcwd()
    os.chdir(rnn_course.SOURCE_DIR)
    try:
        exec(compile(source, grade_id, "exec"), namespace)
    finally:
        os.chdir(here)


def _copying(function):
    """A correct forward function whose caches hold copies of its inputs, as lists."""
    def copies(value):
        return {k: v.copy() for k, v in value.items()} if isinstance(value, dict) else \
            value.copy() if isinstance(value, np.ndarray) else value

    def wrapped(*args):
        *outputs, cache = function(*args)
        if isinstance(cache[0], list):  # (list of step caches, x): the sequence functions
            cache = [[list(map(copies, step)) for step in cache[0]], cache[1].copy()]
        else:
            cache = list(map(copies, cache))
        return (*outputs, cache)
    return wrapped


def test_a_correct_solution_storing_copies_and_lists_passes_every_check_and_hidden_test(capsys):
    cell = _copying(ref.rnn_cell_forward)
    lstm_cell = _copying(ref.lstm_cell_forward)

    def rnn_forward(x, a0, p):  # calls the copying cell, and returns lists
        caches, a, ys, h = [], [], [], a0
        for t in range(x.shape[2]):
            h, y, cache = cell(x[:, :, t], h, p)
            a.append(h)
            ys.append(y)
            caches.append(cache)
        return np.stack(a, axis=2), np.stack(ys, axis=2), [caches, x.copy()]

    def lstm_forward(x, a0, p):
        caches, a, ys, cs, h, c = [], [], [], [], a0, np.zeros_like(a0)
        for t in range(x.shape[2]):
            h, c, y, cache = lstm_cell(x[:, :, t], h, c, p)
            a.append(h)
            cs.append(c)
            ys.append(y)
            caches.append(cache)
        return np.stack(a, axis=2), np.stack(ys, axis=2), np.stack(cs, axis=2), [caches, x.copy()]

    functions = {"rnn_cell_forward": cell, "lstm_cell_forward": lstm_cell, "rnn_forward": rnn_forward,
                 "lstm_forward": lstm_forward}
    for name in functions:
        _run_test_cell(f"test_{name}", functions)
        assert "all checks passed" in capsys.readouterr().out, name


def _lstm_forward_with_one_cell_state_array(x, a0, p):
    """A real mistake: c_next updated in place, so every step's cache holds the same, final, array."""
    n_a, m, T_x = a0.shape[0], x.shape[1], x.shape[2]
    a, c, y, caches = np.zeros((n_a, m, T_x)), np.zeros((n_a, m, T_x)), None, []
    ys = []
    a_next, c_next = a0, np.zeros((n_a, m))
    for t in range(T_x):
        a_next, c_new, yt, cache = ref.lstm_cell_forward(x[:, :, t], a_next, c_next, p)
        c_next[:] = c_new
        a[:, :, t], c[:, :, t] = a_next, c_next
        ys.append(yt)
        caches.append(cache)
    return a, np.stack(ys, axis=2), c, (caches, x)


def test_a_cache_overwritten_by_a_later_step_fails_the_check_and_the_hidden_test():
    functions = {"lstm_forward": _lstm_forward_with_one_cell_state_array}
    with pytest.raises(AssertionError) as info:  # CheckFailed, from the cell's own import of rnn_checks
        _run_test_cell("test_lstm_forward", functions)
    message = str(info.value)
    assert "caches[0][0][3] (c_prev of time step t = 0)" in message and "overwrote" in message
    with pytest.raises(AssertionError, match="the cache of step"):
        _run_test_cell("test_lstm_forward", functions, drop_visible_check=True)


def test_a_transposed_gradient_gets_the_shape_message_before_any_value_is_printed(capsys):
    case = rnn_checks.seeded_case("rnn_cell_backward")
    grads = ref.rnn_cell_backward(case["da_next"], rnn_checks.rnn_cell_cache(case))
    grads["dWax"] = grads["dWax"].T

    def rnn_cell_backward(da_next, cache):
        return grads

    with pytest.raises(AssertionError) as info:  # CheckFailed, from the cell's own import of rnn_checks
        _run_test_cell("test_rnn_cell_backward", {"rnn_cell_backward": rnn_cell_backward})
    assert 'gradients["dWax"] has shape (3, 5); expected (5, 3) = (n_a, n_x)' in str(info.value)
    assert "gradients" not in capsys.readouterr().out, "nothing was printed before the shape message"


def _lstm_cell_grads():
    case = rnn_checks.seeded_case("lstm_cell_backward")
    return case, ref.lstm_cell_backward(case["da_next"], case["dc_next"], rnn_checks.lstm_cell_cache(case))


@pytest.mark.parametrize("gate,label", [("f", "forget gate"), ("i", "update gate"), ("c", "candidate value"),
                                        ("o", "output gate")])
def test_a_mistake_in_one_gates_derivative_is_reported_as_that_gate(gate, label):
    """A wrong derivative of one gate changes its weight and bias gradients and the input gradients
    (through that gate's weights), nothing else: the check names the gate, not dxt."""
    case, g = _lstm_cell_grads()
    for key in (f"dW{gate}", f"db{gate}", "dxt", "da_prev"):
        g[key] = g[key] * 1.3 + 0.01
    message = _failure(rnn_checks.check_lstm_cell_backward, g, case)
    assert message.startswith(f'lstm_cell_backward: gradients["dW{gate}"]') and f"only the {label} is wrong" in message


def test_a_wrong_dc_is_reported_as_the_part_the_three_gates_share():
    case, g = _lstm_cell_grads()
    for key in ("dWf", "dbf", "dWi", "dbi", "dWc", "dbc", "dc_prev", "dxt", "da_prev"):
        g[key] = g[key] * 0.7
    message = _failure(rnn_checks.check_lstm_cell_backward, g, case)
    assert "dWo is right" in message and "dc = dc_next + da_next" in message


def test_wrong_weight_slices_with_right_gates_are_named():
    case, g = _lstm_cell_grads()
    g["dxt"] = g["dxt"] + 0.5
    message = _failure(rnn_checks.check_lstm_cell_backward, g, case)
    assert message.startswith('lstm_cell_backward: gradients["dxt"]') and "W[:, n_a:]" in message


def _lstm_cell_with(change):
    """lstm_cell_forward's outputs on the seeded case, with the gates recomputed by `change`."""
    case = rnn_checks.seeded_case("lstm_cell_forward")
    p = case["parameters"]
    concat = change(np.concatenate((case["a_prev"], case["xt"])))
    ft = rnn_utils.sigmoid(p["Wf"] @ concat[0] + concat[1] * p["bf"])
    result = ref.lstm_cell_forward(case["xt"], case["a_prev"], case["c_prev"], p)
    cache = list(result[3])
    cache[4] = ft
    return case, (*result[:3], tuple(cache))


def test_a_missing_bias_and_a_reversed_concatenation_get_their_own_hints():
    case, result = _lstm_cell_with(lambda s: (s, 0.0))
    assert "is the bias bf missing" in _failure(rnn_checks.check_lstm_cell_forward, result, case)
    n_a = case["a_prev"].shape[0]
    case, result = _lstm_cell_with(lambda s: (np.concatenate((s[n_a:], s[:n_a])), 1.0))
    message = _failure(rnn_checks.check_lstm_cell_forward, result, case)
    assert "concat = [a_prev; xt]" in message and "the forget gate" in message


# ------------------------------------------ a second input, and the step function blamed first

def _master_with(*mistakes):
    """The master's functions, with each (function, text, replacement) made in its solution cell."""
    from grader.core import notebook
    nb = notebook.read(rnn_course.MASTER_NOTEBOOK)
    namespace = {"__name__": "student"}
    sys.path.insert(0, str(rnn_course.SOURCE_DIR))
    try:
        for cell in nb.cells:
            meta = notebook.nbgrader_meta(cell)
            if cell.cell_type != "code" or not (meta.get("solution") or meta.get("grade_id") == "imports"):
                continue
            source = cell.source
            for function, old, new in mistakes:
                if meta.get("grade_id") == function:
                    assert old in source, (function, old)
                    source = source.replace(old, new)
            exec(compile(source, str(meta.get("grade_id")), "exec"), namespace)
    finally:
        sys.path.remove(str(rnn_course.SOURCE_DIR))
    return namespace


def _cell_message(grade_id, namespace, capsys=None):
    """What the master's test cell `grade_id` says when run on `namespace`'s functions (it must fail)."""
    import os
    from grader.core import notebook
    source = notebook.cell_by_id(notebook.read(rnn_course.MASTER_NOTEBOOK), grade_id).source
    here = os.getcwd()
    os.chdir(rnn_course.SOURCE_DIR)
    try:
        with pytest.raises(Exception) as info:
            exec(compile(source, grade_id, "exec"), dict(namespace))
    finally:
        os.chdir(here)
    return str(info.value)


HARD_CODED = [("rnn_forward", "range(T_x)", "range(4)"),
              ("lstm_forward", "range(T_x)", "range(7)"),
              ("rnn_backward", "reversed(range(T_x))", "reversed(range(4))"),
              ("lstm_backward", "reversed(range(T_x))", "reversed(range(7))"),
              ("rnn_cell_backward", "np.sum(dz, axis=1, keepdims=True)", "np.sum(dz, axis=1).reshape(5, 1)"),
              ("lstm_cell_forward", "concat = np.concatenate((a_prev, xt), axis=0)",
               "concat = np.zeros((8, 10))\n    concat[:5] = a_prev\n    concat[5:] = xt"),
              ("rnn_cell_forward", "yt_pred = softmax(Wya @ a_next + by)",
               "yt_pred = softmax((Wya @ a_next + by).reshape(2, 10))")]


@pytest.mark.parametrize("function,old,new", HARD_CODED, ids=[m[0] + ":" + m[2][:24] for m in HARD_CODED])
def test_a_hard_coded_size_fails_in_the_notebook_and_says_so(function, old, new, capsys):
    """Sizes of the seeded input written into the code pass the first input, and fail the second
    with a message naming the second input's sizes and the likely cause."""
    namespace = _master_with((function, old, new))
    message = _cell_message(f"test_{function}", namespace)
    out = capsys.readouterr().out
    assert f"\N{CHECK MARK} {function}: all checks passed." in out, "the seeded input still passes"
    assert message.startswith("On the second input (n_x = 4, n_a = 2"), message
    assert "written into your code" in message


STEP_MISTAKES = [
    ("rnn_forward", ("rnn_cell_forward", "a_next = np.tanh(", "a_next = sigmoid("), "a_next"),
    ("lstm_forward", ("lstm_cell_forward", "sigmoid(Wf @ concat + bf)", "sigmoid(Wf @ concat)"), "is the bias bf missing"),
    ("lstm_forward", ("lstm_cell_forward", "c_next = ft * c_prev", "c_next = ft * np.tanh(c_prev)"), "c_next"),
    ("rnn_backward", ("rnn_cell_backward", "(1 - a_next ** 2)", "(1 - a_next)"), "dz = da_next * (1 - a_next ** 2)"),
    ("lstm_backward", ("lstm_cell_backward", "dit = dc * cct * it * (1 - it)", "dit = dc * cct * (1 - it)"),
     "only the update gate is wrong"),
    ("lstm_backward", ("lstm_cell_backward", "dcct = dc * it", "dcct = dc_next * it"), "dWc"),
]


@pytest.mark.parametrize("sequence,mistake,cause", STEP_MISTAKES,
                         ids=[f"{m[0]}:{m[1][2][:20]}" for m in STEP_MISTAKES])
def test_a_step_function_mistake_is_blamed_on_the_step_function(sequence, mistake, cause):
    message = _cell_message(f"test_{sequence}", _master_with(mistake))
    assert message.startswith(f"{sequence} is wrong because {mistake[0]} is."), message
    assert "time step t = " in message and cause in message


def test_a_step_function_that_is_not_written_yet_is_named_and_its_error_kept():
    namespace = _master_with(("rnn_cell_forward", "a_next = np.tanh(", "raise NotImplementedError()\n    a_next = ("))
    message = _cell_message("test_rnn_forward", namespace)
    assert message.startswith("rnn_forward is wrong because rnn_cell_forward is.") and "NotImplementedError" in message


def test_a_function_not_written_yet_is_named_and_the_optional_part_said_to_be_optional():
    namespace = _master_with(("rnn_forward", "a = np.zeros((n_a, m, T_x))", "raise NotImplementedError()"))
    message = _cell_message("test_rnn_forward", namespace)
    assert message.startswith("rnn_forward is not written yet.") and "OPTIONAL" not in message
    namespace = _master_with(("rnn_backward", "n_a, m, T_x = da.shape", "raise NotImplementedError()"),
                             ("rnn_cell_backward", "dz = (1", "raise NotImplementedError()\n    dz = (1"))
    message = _cell_message("test_rnn_backward", namespace)
    assert message.startswith("rnn_backward is not written yet") and "rnn_backward is OPTIONAL" in message
    assert "takes nothing from the 100 points" in message


def test_another_error_keeps_its_own_traceback():
    namespace = _master_with(("rnn_forward", "a = np.zeros((n_a, m, T_x))", "a = np.zeros((n_a, m, T_x)) + x"))
    with pytest.raises(ValueError, match="broadcast"):
        _run_namespace_cell("test_rnn_forward", namespace)


def _run_namespace_cell(grade_id, namespace):
    import os
    from grader.core import notebook
    source = notebook.cell_by_id(notebook.read(rnn_course.MASTER_NOTEBOOK), grade_id).source
    here = os.getcwd()
    os.chdir(rnn_course.SOURCE_DIR)
    try:
        exec(compile(source, grade_id, "exec"), dict(namespace))
    finally:
        os.chdir(here)


SEQUENCE_MISTAKES = [
    ("rnn_forward", ("rnn_forward", "(x[:, :, t], a_next, parameters)", "(x[:, :, t], a0, parameters)"),
     "the first time step is right and later ones are not"),
    ("lstm_forward", ("lstm_forward", "a[:, :, t] = a_next", "a[:, :, t] = c_next"), "a holds the values of c"),
    ("lstm_forward", ("lstm_forward", "c[:, :, t] = c_next", "c[:, :, t] = a_next"), "c holds the values of a"),
    ("rnn_backward", ("rnn_backward", "da[:, :, t] + da_prevt", "da[:, :, t]"), "da_prev from step t + 1"),
    ("lstm_backward", ("lstm_backward", "totals[key] += step[key]", "totals[key] = step[key]"),
     "add up over all time steps"),
]


@pytest.mark.parametrize("sequence,mistake,cause", SEQUENCE_MISTAKES,
                         ids=[f"{m[0]}:{m[1][2][:20]}" for m in SEQUENCE_MISTAKES])
def test_a_sequence_mistake_is_not_blamed_on_the_step_function(sequence, mistake, cause):
    message = _cell_message(f"test_{sequence}", _master_with(mistake))
    assert "because" not in message.splitlines()[0] and cause in message, message


def test_the_master_prints_both_inputs_passed(capsys):
    namespace = _master_with()
    for name in ("rnn_cell_forward", "rnn_forward", "lstm_cell_forward", "lstm_forward", "rnn_cell_backward",
                 "rnn_backward", "lstm_cell_backward", "lstm_backward"):
        _run_namespace_cell(f"test_{name}", namespace)
        out = capsys.readouterr().out
        assert f"{name}: all checks passed.\n" in out and f"{name}: all checks passed on a second input too (" in out


def test_hints_for_a_missing_rnn_bias_an_integer_array_a_transposed_square_gradient_and_squeeze():
    """Causes a student trial found named wrongly before: each now gets its own hint."""
    message = _cell_message("test_rnn_cell_forward", _master_with(
        ("rnn_cell_forward", "Wax @ xt + ba)", "Wax @ xt)")))
    assert "is the bias ba missing" in message
    message = _cell_message("test_rnn_forward", _master_with(
        ("rnn_forward", "a = np.zeros((n_a, m, T_x))", "a = np.zeros((n_a, m, T_x), dtype=int)")))
    assert "int64 values" in message and "floats" in message
    message = _cell_message("test_rnn_cell_backward", _master_with(
        ("rnn_cell_backward", "dWaa = dz @ a_prev.T", "dWaa = (dz @ a_prev.T).T")))
    assert 'gradients["dWaa"] is the transpose' in message
    message = _cell_message("test_rnn_cell_forward", _master_with(
        ("rnn_cell_forward", "yt_pred = softmax(Wya @ a_next + by)",
         "yt_pred = softmax(Wya @ a_next + by)\n    a_next = np.squeeze(a_next)")))
    assert message.startswith("rnn_cell_forward, on the second input") and "np.squeeze" in message


def test_the_ungraded_gradient_checks_say_what_to_finish_first(capsys):
    """Cells a student may run with the optional part skipped explain themselves instead of a bare error."""
    from grader.core import notebook
    namespace = _master_with(("rnn_cell_backward", "dz = (1", "raise NotImplementedError()\n    dz = (1"))
    namespace.update(np=np, gradient_check=rnn_utils.gradient_check)
    cell = next(c for c in notebook.read(rnn_course.MASTER_NOTEBOOK).cells if c.get("id") == "gradcheck-rnn-cell")
    exec(compile(cell.source, "gradcheck", "exec"), namespace)
    assert "Finish rnn_cell_forward and rnn_cell_backward first" in capsys.readouterr().out
