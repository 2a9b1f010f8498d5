"""nbgrader's own commands with the kit's lines in nbgrader_config.py (grader/nbgrader_engine.py and the exporters
they name, grader/nbgrader_exporters.py).

`nbgrader autograde` and `nbgrader generate_feedback`, run as an instructor runs them, must give every
submission the scores `grade` gives it, flag what needs a look where formgrader shows it, and write the kit's
feedback pages (no hidden test line); `nbgrader-config` switches it on and off and leaves the rest of the file
alone; without the kit installed, nbgrader says so in one line and grades nothing.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

import rnn_course
from conftest import ROOT, kit, make_course_copy, write_samples
from grader import nbgrader_engine
from grader.core.model import GRADED, TAMPERING
from grader.course import assignments, release, solutions
from grader.grade import batch
from grader_eval import stock
from rnn_course import samples

FORGERY = ("import numpy as np\nnp.allclose = lambda *a, **k: True\n"
           "np.isclose = lambda a, b, **k: np.ones(np.shape(a), bool)\n"
           "import rnn_checks\nfor name in dir(rnn_checks):\n"
           "    if name.startswith('check_'):\n        setattr(rnn_checks, name, lambda *a, **k: None)\n")


def nbgrader(course_dir, *args, modules_missing=()):
    """`nbgrader <args>` in `course_dir`, as an instructor runs it (with `modules_missing` not importable)."""
    code = ("import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in modules_missing)
            + "from nbgrader.apps.nbgraderapp import main\nsys.argv = ['nbgrader'] + sys.argv[1:]\nmain()\n")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=course_dir, env=stock.environment(),
                          capture_output=True, text=True, timeout=900)


def forged_submission():
    """Wrong rnn_cell_forward, and a cell that makes every check inside the notebook pass."""
    answers = samples.master_solutions()
    answers["rnn_cell_forward"] = samples.mutate(answers["rnn_cell_forward"], "np.tanh(", "sigmoid(")
    nb = samples.fill(answers)
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id")
                 == "test_rnn_cell_forward")
    nb.cells.insert(index, new_code_cell(FORGERY))
    return nb


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """The demo's samples and a forger, graded by `grade` in one course and by `nbgrader autograde` (the kit's
    lines on, as this repository ships) in a copy."""
    course_dir = make_course_copy(tmp_path_factory.mktemp("engine") / "kit")
    assert nbgrader_engine.is_enabled((course_dir / "nbgrader_config.py").read_text())
    release.generate(course_dir, rnn_course.ASSIGNMENT)
    write_samples(course_dir)
    samples.write(forged_submission(), course_dir, "forger")
    engine_dir = course_dir.parent / "nbgrader"
    shutil.copytree(course_dir, engine_dir)
    graded = kit(course_dir, "grade", "--cell-timeout", "5")
    assert graded.returncode == 1, graded.stderr  # the broken samples need attention
    autograded = nbgrader(engine_dir, "autograde", rnn_course.ASSIGNMENT, "--force", "--ExecutePreprocessor.timeout=5")
    assert autograded.returncode == 0, autograded.stderr[-3000:]
    return {"kit": course_dir, "engine": engine_dir, "log": autograded.stderr}


def statuses(course_dir, name=rnn_course.ASSIGNMENT):
    layout = assignments.find(course_dir, name)
    return {student: result.status for student, result in batch.all_results(layout).items()}


def flagged(course_dir):
    import sqlite3
    with sqlite3.connect(course_dir / "gradebook.db") as db:
        return {student: bool(flag) for student, flag in db.execute(
            "select a.student_id, max(n.flagged) from submitted_notebook n join submitted_assignment a "
            "on a.id = n.assignment_id group by a.student_id")}


def test_nbgrader_autograde_gives_every_submission_the_kits_scores(both):
    mine, theirs = stock.scores(both["kit"], rnn_course.ASSIGNMENT), stock.scores(both["engine"], rnn_course.ASSIGNMENT)
    assert set(mine) == set(SAMPLE_NAMES) | {"forger"}
    assert theirs == mine
    assert statuses(both["engine"]) == statuses(both["kit"])
    assert "Graded by the course kit" in both["log"]
    # nbgrader's own command line sets the cell timeout (as text, which traitlets resolves late), over the config's 30
    assert both["log"].count(f"The course kit grades {rnn_course.ASSIGNMENT} with a cell timeout of 5 s") == 1


SAMPLE_NAMES = list(samples.sample_submissions())


def test_a_forged_pass_scores_what_it_earned_and_is_flagged_where_formgrader_shows_it(both):
    status = statuses(both["engine"])
    assert status["forger"] == TAMPERING
    assert stock.scores(both["engine"], rnn_course.ASSIGNMENT)["forger"][
        (rnn_course.ASSIGNMENT, "test_rnn_cell_forward")] == 0
    # formgrader's flag on exactly the submissions that need a look, and the reason at the top of the notebook
    assert flagged(both["engine"]) == {student: s != GRADED for student, s in status.items()}
    graded = nbformat.read(both["engine"] / "autograded" / "forger" / rnn_course.ASSIGNMENT
                           / f"{rnn_course.ASSIGNMENT}.ipynb", as_version=4)
    assert graded.cells[0].metadata["autograder"]["banner"]
    assert graded.cells[0].source.startswith(f"**Autograder: {TAMPERING}.**")
    assert "forger needs a look: tampering suspected" in both["log"]
    honest = nbformat.read(both["engine"] / "autograded" / "sample_correct" / rnn_course.ASSIGNMENT
                           / f"{rnn_course.ASSIGNMENT}.ipynb", as_version=4)
    assert "autograder" not in honest.cells[0].metadata


def test_generate_feedback_writes_the_kits_pages_and_nothing_hidden(both):
    course_dir = both["engine"]
    done = nbgrader(course_dir, "generate_feedback", rnn_course.ASSIGNMENT, "--force")
    assert done.returncode == 0, done.stderr[-3000:]
    pages = {p: p.read_text() for p in (course_dir / "feedback").glob(f"*/{rnn_course.ASSIGNMENT}/*.html")}
    assert len(pages) == len(SAMPLE_NAMES) + 1
    hidden = batch.load_assignment(assignments.find(course_dir, rnn_course.ASSIGNMENT)).hidden_lines()
    for path, page in pages.items():
        assert not [line for line in hidden if line.strip() and line.strip() in page], path
        assert page.startswith("<!DOCTYPE html>") and "Feedback: rnn_step_by_step" in page
    # nothing of the instructor's records is handed out beside them
    handed = {p.name for p in (course_dir / "feedback").rglob("*")}
    assert batch.RESULT_FILE not in handed and not any(n.endswith(batch.AS_SUBMITTED) for n in handed)
    assert {"timestamp.txt", "submission_secret.txt"} <= handed
    # the same pages, byte for byte, as the kit's own publish writes from the same gradebook
    published = kit(course_dir, "publish")
    assert published.returncode in (0, 1), published.stderr
    assert {p: p.read_text() for p in pages} == pages


def test_without_the_kit_nbgrader_refuses_in_one_line_and_grades_nothing(both, tmp_path):
    course_dir = tmp_path / "course"
    shutil.copytree(both["engine"], course_dir)
    before = stock.scores(course_dir, rnn_course.ASSIGNMENT)
    for command in ("autograde", "generate_feedback"):
        done = nbgrader(course_dir, command, rnn_course.ASSIGNMENT, "--force", modules_missing=["grader"])
        assert done.returncode == 1
        errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
        assert len(errors) == 1 and "the kit is not installed in the Python that runs nbgrader" in errors[0], \
            done.stderr
        assert "Traceback" not in done.stderr
    assert stock.scores(course_dir, rnn_course.ASSIGNMENT) == before


def test_nbgrader_config_switches_on_and_off_leaving_the_rest_of_the_file(tmp_path):
    course_dir = tmp_path / "course"
    course_dir.mkdir()
    theirs = ("c = get_config()\nc.CourseDirectory.course_id = 'theirs'\n# their own habit\n"
              "c.Exchange.root = '/srv/nbgrader/exchange'\n")
    (course_dir / "nbgrader_config.py").write_text(theirs)
    run = lambda *args: kit(course_dir, "nbgrader-config", *args)  # noqa: E731
    shown = run("show")
    assert shown.returncode == 0 and "are stock nbgrader's" in shown.stdout
    on = run("enable")
    assert on.returncode == 0 and "were added at its end" in on.stdout
    text = (course_dir / "nbgrader_config.py").read_text()
    assert text.startswith(theirs) and text.endswith(nbgrader_engine.BLOCK)
    assert "grade with the kit" in run("show").stdout
    again = run("enable")
    assert "nothing changed" in again.stdout and (course_dir / "nbgrader_config.py").read_text() == text
    off = run("disable")
    assert off.returncode == 0 and "were taken out" in off.stdout
    assert (course_dir / "nbgrader_config.py").read_text() == theirs
    assert "nothing changed" in run("disable").stdout
    # lines damaged by hand are named, not guessed at
    (course_dir / "nbgrader_config.py").write_text(theirs + nbgrader_engine.BEGIN + "\n")
    damaged = run("disable")
    assert damaged.returncode == 2 and "remove what is left of them by hand" in damaged.stderr


def test_this_kits_course_ships_with_the_kit_switched_on():
    shown = kit(ROOT, "nbgrader-config", "show")
    assert shown.returncode == 0 and "grade with the kit" in shown.stdout, shown.stdout + shown.stderr


def test_the_config_names_the_exporters_without_importing_them():
    """Every nbgrader command, and every one of the kit's, loads the course's config: the module its lines import
    leaves nbconvert (half a second) to the commands that convert a notebook; the names it gives are the
    exporters' own."""
    checked = subprocess.run([sys.executable, "-c", (
        "import sys\nfrom grader import nbgrader_engine as e\nassert 'nbconvert' not in sys.modules, 'nbconvert'\n"
        "from grader import nbgrader_exporters as x\n"
        "assert (e.AUTOGRADE, e.FEEDBACK) == (e.dotted(x.KitAutograde), e.dotted(x.KitFeedback))\n")],
        cwd=ROOT, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    """nbgrader's own example course (two notebooks, answers graded by hand), graded by `grade` and, in a copy
    switched on with `nbgrader-config enable`, by `nbgrader autograde`."""
    home = tmp_path_factory.mktemp("quickstart")
    subprocess.run([sys.executable, "-m", "nbgrader", "quickstart", "course101"], cwd=home, env=stock.environment(),
                   check=True, capture_output=True)
    course_dir = home / "course101"
    assert kit(course_dir, "release", "ps1").returncode == 0
    layout = assignments.find(course_dir, "ps1")
    right = {name: solutions.master_solutions(layout.master(name)) for name in layout.notebooks}
    wrong = {**right, "problem1": {**right["problem1"],
                                   "squares": right["problem1"]["squares"].replace("i ** 2", "i * 2")}}
    for student, answers in {"alice": right, "carol": wrong, "dave": {"problem1": right["problem1"]}}.items():
        for name, filled in answers.items():
            solutions.write(solutions.fill(filled, layout.release(name)), course_dir, student, "ps1", name)
    engine_dir = home / "engine"
    shutil.copytree(course_dir, engine_dir)
    assert kit(engine_dir, "nbgrader-config", "enable").returncode == 0
    graded = kit(course_dir, "grade", "ps1")
    assert graded.returncode in (0, 1), graded.stderr
    done = nbgrader(engine_dir, "autograde", "ps1", "--force")
    assert done.returncode == 0, done.stderr[-3000:]
    return course_dir, engine_dir


def test_a_multi_notebook_assignment_graded_partly_by_hand_gets_the_kits_scores(quickstart):
    course_dir, engine_dir = quickstart
    mine, theirs = stock.scores(course_dir, "ps1"), stock.scores(engine_dir, "ps1")
    assert set(mine) == {"alice", "carol", "dave"} and theirs == mine
    assert mine["alice"][("problem1", "sum_of_squares_application")] is None, "an answer waits for a person"
    assert statuses(engine_dir, "ps1") == statuses(course_dir, "ps1")
    # dave handed in problem1 only: the kit grades problem2 as released, as stock does, in both
    assert theirs["dave"][("problem2", "part-a")] == 0


def test_the_repositorys_config_carries_the_kits_lines_as_enable_writes_them_today():
    """The course's own nbgrader_config.py is current: `nbgrader-config enable` (the README's formgrader block)
    would change nothing in it."""
    assert nbgrader_engine.BLOCK.strip() in (ROOT / "nbgrader_config.py").read_text()
