"""Submissions of this assignment, as students would fill in the release.

The demo's sample students, the benchmark's class and the tests' corpus of wrong
submissions: the release with some solution cells filled with the master's solution,
or with the master's solution and a typical mistake.
"""
import copy
import json

import nbformat
from nbformat.v4.nbbase import random_cell_id

from grader.core import notebook
from grader.course import solutions

from . import ASSIGNMENT, GRADED_FUNCTIONS, MASTER_NOTEBOOK, NOTEBOOK, RELEASE_NOTEBOOK


# Typical mistakes, for the tests and the benchmark.
# name -> (function whose solution cell is changed, text in the solution, replacement)
MISTAKES = {
    "sigmoid_for_tanh": ("rnn_cell_forward", "np.tanh(", "sigmoid("),
    "hard_coded_outputs": ("rnn_cell_forward", "a_next = np.tanh(Waa @ a_prev + Wax @ xt + ba)\n"
                           "    yt_pred = softmax(Wya @ a_next + by)\n",
                           "from rnn_checks import expected\n    a_next = expected('rnn_cell_forward')['a_next']\n"
                           "    yt_pred = expected('rnn_cell_forward')['yt_pred']\n"),
    "loop_bound_fixed_to_seed": ("rnn_forward", "range(T_x)", "range(4)"),
    "a0_at_every_step": ("rnn_forward", "rnn_cell_forward(x[:, :, t], a_next, parameters)",
                         "rnn_cell_forward(x[:, :, t], a0, parameters)"),
    "forget_and_update_gates_swapped": ("lstm_cell_forward", "ft = sigmoid(Wf @ concat + bf)\n    it = sigmoid(Wi @ concat + bi)",
                                        "ft = sigmoid(Wi @ concat + bi)\n    it = sigmoid(Wf @ concat + bf)"),
    "concat_in_wrong_order": ("lstm_cell_forward", "np.concatenate((a_prev, xt)", "np.concatenate((xt, a_prev)"),
    "cell_state_not_carried": ("lstm_forward", "lstm_cell_forward(x[:, :, t], a_next, c_next, parameters)",
                               "lstm_cell_forward(x[:, :, t], a_next, np.zeros((n_a, m)), parameters)"),
    "lstm_loop_bound_fixed_to_seed": ("lstm_forward", "range(T_x)", "range(7)"),
    "wrong_tanh_derivative": ("rnn_cell_backward", "(1 - a_next ** 2)", "(1 - a_next)"),
    "rnn_no_backprop_through_time": ("rnn_backward", "da[:, :, t] + da_prevt", "da[:, :, t]"),
    "seed_equation_8_without_the_a_path": ("lstm_cell_backward", "dcct = dc * it", "dcct = dc_next * it"),
    "lstm_no_backprop_through_time": ("lstm_backward", "lstm_cell_backward(da[:, :, t] + da_prevt, dc_prevt, caches[t])",
                                      "lstm_cell_backward(da[:, :, t], np.zeros((n_a, m)), caches[t])"),
}


def mutate(body, old, new):
    """body with `old` replaced by `new` once; fails loudly if `old` is not there."""
    if old not in body:
        raise ValueError(f"cannot make the mistake: {old!r} is not in the solution")
    return body.replace(old, new, 1)


def master_solutions():
    """grade_id -> the master's solution code, for this assignment."""
    return solutions.master_solutions(MASTER_NOTEBOOK)


def fill(answers):
    """This assignment's release with the solution cells in `answers` (grade_id -> code) filled in."""
    return solutions.fill(answers, RELEASE_NOTEBOOK)


def write(nb_or_text, course_dir, student):
    """Place a submission of this assignment at submitted/<student>/rnn_step_by_step/; return its path."""
    return solutions.write(nb_or_text, course_dir, student, ASSIGNMENT, NOTEBOOK)


def sample_submissions():
    """The demo's sample students: student id -> (what the sample shows, notebook or raw text)."""
    correct = master_solutions()
    forward_rnn = {k: correct[k] for k in ("rnn_cell_forward", "rnn_forward")}
    noisy = dict(correct)
    # Correct answers that also trigger a RuntimeWarning: graded as correct (see README).
    noisy["rnn_cell_forward"] = ("    import warnings\n    warnings.warn('harmless', RuntimeWarning)\n"
                                 + correct["rnn_cell_forward"])
    broken = nbformat.writes(fill({}))
    tampered = fill(correct)
    test = notebook.cell_by_id(tampered, "test_rnn_cell_forward")
    test.source = "# I only print my answer\nprint(rnn_cell_forward)\n"
    tampered.cells.remove(notebook.cell_by_id(tampered, "test_rnn_forward"))
    duplicated = fill(correct)
    pasted = copy.deepcopy(duplicated.cells[4])  # a second rnn_cell_forward solution cell
    pasted.id = random_cell_id()  # Jupyter gives a pasted cell a new id
    duplicated.cells.insert(4, pasted)
    duplicated.cells[4].metadata.nbgrader["schema_version"] = 99
    endless = {**correct, "rnn_cell_backward": "    while True:\n        pass\n"}
    return {
        "sample_correct": ("every function right", fill(correct)),
        "sample_partial": ("basic RNN forward only", fill(forward_rnn)),
        "sample_blank": ("the release as handed out", fill({})),
        "sample_warning": ("right, but raises a warning", fill(noisy)),
        "sample_broken": ("notebook file cut short (invalid JSON)", broken[: len(broken) // 2]),
        "sample_tampered": ("right, one test cell edited and one deleted", tampered),
        "sample_duplicate": ("right, a solution cell pasted twice, schema_version edited", duplicated),
        "sample_endless": ("right, but an endless loop in rnn_cell_backward", fill(endless)),
    }


def benchmark_class(n):
    """student id -> (kind, {notebook name: notebook or text}), as grader_eval.benchmark takes a class: correct,
    typical mistakes, forward only, blank, a warning, notebooks cut short and endless loops."""
    correct = master_solutions()
    mistakes = sorted(MISTAKES)
    loops = max(1, n // 100)
    broken = max(1, n // 50)
    plan = ["endless"] * loops + ["broken"] * broken
    cycle = ["correct", "mistake", "correct", "blank", "mistake", "forward_only", "correct", "mistake", "warning"]
    plan += [cycle[i % len(cycle)] for i in range(n - len(plan))]
    made = {}
    for i, kind in enumerate(plan):
        student = f"s{i:04d}_{kind}"
        if kind == "correct":
            nb = fill(correct)
        elif kind == "mistake":
            name = mistakes[i % len(mistakes)]
            function, old, new = MISTAKES[name]
            nb = fill({**correct, function: mutate(correct[function], old, new)})
            student = f"s{i:04d}_{name}"
        elif kind == "forward_only":
            nb = fill({k: v for k, v in correct.items() if k in GRADED_FUNCTIONS})
        elif kind == "blank":
            nb = fill({})
        elif kind == "warning":
            nb = fill({**correct, "rnn_forward": "    import warnings\n    warnings.warn('harmless', "
                               "RuntimeWarning)\n" + correct["rnn_forward"]})
        elif kind == "broken":
            nb = json.dumps(fill({}).dict())[:5000]  # cut short, as by a failed upload
        else:  # endless: a loop in the optional part, so the graded part still counts
            nb = fill({**correct, "rnn_cell_backward": "    while True:\n        pass\n"})
        made[student] = (kind, {NOTEBOOK: nb})
    return made
