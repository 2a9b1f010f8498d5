"""Build submissions from the release, as a student would fill it in.

Used for the bundled sample submissions of the demo and for the tests' corpus of
wrong submissions. A submission is the release notebook with some solution cells
filled with code: the master's solution, or the master's solution with a mistake.
"""
import copy
import re
from pathlib import Path

import nbformat
from nbformat.v4.nbbase import random_cell_id

from . import course, notebook

_SOLUTION = re.compile(r"^[ \t]*### BEGIN SOLUTION[ \t]*\n(.*?)^[ \t]*### END SOLUTION[ \t]*\n", re.S | re.M)
_STUB = re.compile(r"^[ \t]*# YOUR CODE HERE\n[ \t]*raise NotImplementedError\(\)[ \t]*\n?", re.M)


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


def master_solutions(master=course.MASTER_NOTEBOOK):
    """grade_id -> the code between BEGIN SOLUTION and END SOLUTION in the master notebook."""
    bodies = {}
    for cell in notebook.read(master).cells:
        meta = notebook.nbgrader_meta(cell)
        if meta.get("solution") and cell.cell_type == "code":
            match = _SOLUTION.search(cell.source)
            if match is None:
                raise ValueError(f"solution cell {meta['grade_id']!r} has no BEGIN/END SOLUTION region")
            bodies[meta["grade_id"]] = match.group(1)
    return bodies


def mutate(body, old, new):
    """body with `old` replaced by `new` once; fails loudly if `old` is not there."""
    if old not in body:
        raise ValueError(f"cannot make the mistake: {old!r} is not in the solution")
    return body.replace(old, new, 1)


def fill(answers, release=course.RELEASE_NOTEBOOK):
    """The release notebook with the solution cells in `answers` (grade_id -> code) filled in."""
    nb = notebook.read(release)
    unknown = set(answers)
    for cell in nb.cells:
        grade_id = notebook.nbgrader_meta(cell).get("grade_id")
        if grade_id in answers:
            if not _STUB.search(cell.source):
                raise ValueError(f"release cell {grade_id!r} has no '# YOUR CODE HERE' stub to fill")
            cell.source = _STUB.sub(lambda _: answers[grade_id], cell.source, count=1)
            unknown.discard(grade_id)
    if unknown:
        raise KeyError(f"the release has no solution cells called {sorted(unknown)}")
    return nb


def write(nb_or_text, course_dir, student, assignment=course.ASSIGNMENT, name=course.NOTEBOOK):
    """Place a submission at submitted/<student>/<assignment>/<name>.ipynb; return its path."""
    folder = Path(course_dir) / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    if isinstance(nb_or_text, str):
        path.write_text(nb_or_text)
    else:
        nbformat.write(nb_or_text, str(path))
    return path


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
