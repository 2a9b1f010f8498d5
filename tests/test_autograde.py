"""Does each mistake cost exactly the points of what it breaks, and does the kit's grader give
every submission the same per-test scores as stock nbgrader autograde?"""
import shutil

import pytest

from grader.grade import batch
from grader_eval import stock
import rnn_course
from rnn_course import samples
from rnn_course.samples import MISTAKES
from conftest import rnn, rnn_scores

# Which functions call which: a broken function also costs the points of its callers.
CALLERS = {"rnn_cell_forward": {"rnn_forward"}, "lstm_cell_forward": {"lstm_forward"},
           "rnn_cell_backward": {"rnn_backward"}, "lstm_cell_backward": {"lstm_backward"}}

# Mistakes outside the solution region (in provided code a student may still edit).
CELL_MISTAKES = {
    "cache_in_wrong_order": ("rnn_cell_forward", "cache = (a_next, a_prev, xt, parameters)",
                             "cache = (a_prev, a_next, xt, parameters)"),
}
ALL_FUNCTIONS = rnn_course.GRADED_FUNCTIONS + rnn_course.OPTIONAL_FUNCTIONS


def _broken_functions(function):
    return {function} | CALLERS.get(function, set())


@pytest.fixture(scope="module")
def corpus(graded_course):
    correct = samples.master_solutions()
    built = {"correct": samples.fill(correct), "blank": samples.fill({})}
    for name, (function, old, new) in MISTAKES.items():
        built[name] = samples.fill({**correct, function: samples.mutate(correct[function], old, new)})
    for name, (function, old, new) in CELL_MISTAKES.items():
        nb = samples.fill(correct)
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == function)
        cell.source = samples.mutate(cell.source, old, new)
        built[name] = nb
    # Correct answers that warn or write to stderr: nbgrader alone would give these 0.
    built["correct_with_warning"] = samples.fill({**correct, "rnn_forward": (
        "    import warnings\n    warnings.warn('overflow, but harmless', RuntimeWarning)\n" + correct["rnn_forward"])})
    built["correct_with_stderr"] = samples.fill({**correct, "lstm_forward": (
        "    import sys\n    print('debug output', file=sys.stderr)\n" + correct["lstm_forward"])})
    for student, nb in built.items():
        samples.write(nb, graded_course, student)
    stock_dir = graded_course.parent / "stock_copy"
    shutil.copytree(graded_course, stock_dir)
    stock.autograde(stock_dir, rnn_course.ASSIGNMENT)
    done = batch.grade_batch(rnn(graded_course), list(built))
    return {"kit": done.results, "stock": rnn_scores(stock_dir)}


def scores(result):
    return {t.label: t.score for t in result.tests}


def test_kit_and_stock_nbgrader_give_identical_per_test_scores(corpus):
    """On every ordinary submission of the corpus, test by test."""
    assert set(corpus["kit"]) == set(corpus["stock"])
    for student, result in corpus["kit"].items():
        assert {t.grade_id: t.score for t in result.tests} == corpus["stock"][student], student


def test_correct_submission_gets_full_marks(corpus):
    """Does the master's solution, submitted through the release, get every point?"""
    r = corpus["kit"]["correct"]
    assert r.status == "graded"
    assert (r.part("graded"), r.part("optional")) == (100, 20)


def test_blank_submission_gets_nothing(corpus):
    r = corpus["kit"]["blank"]
    assert r.status == "graded" and (r.part("graded"), r.part("optional")) == (0, 0)


@pytest.mark.parametrize("mistake", sorted(MISTAKES) + sorted(CELL_MISTAKES))
def test_mistake_costs_exactly_the_points_of_what_it_breaks(corpus, mistake):
    """Does the mistake lose its function's points (and its callers'), and keep every other point?"""
    function = {**MISTAKES, **CELL_MISTAKES}[mistake][0]
    r = corpus["kit"][mistake]
    assert r.status == "graded", r.reason
    broken = _broken_functions(function)
    for t in r.tests:
        expected = 0 if t.label in broken else t.max_score
        assert t.score == expected, f"{mistake}: {t.label} scored {t.score}, expected {expected}"


def test_every_function_has_a_mistake_in_the_corpus():
    assert {v[0] for v in {**MISTAKES, **CELL_MISTAKES}.values()} == set(ALL_FUNCTIONS)


@pytest.mark.parametrize("student", ["correct_with_warning", "correct_with_stderr"])
def test_harmless_warning_or_stderr_does_not_cost_points(corpus, student):
    """Does a correct answer that warns, or prints to stderr, keep its points?"""
    r = corpus["kit"][student]
    assert r.status == "graded" and (r.part("graded"), r.part("optional")) == (100, 20)
