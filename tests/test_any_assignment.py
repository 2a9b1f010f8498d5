"""Does the engine grade any assignment of a course, knowing nothing of it, as stock nbgrader does?"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, kit, write_samples
from grader.course import assignments, solutions
from grader_eval import stock
from small_assignments import SECOND, two_assignment_course

ENGINE = ROOT / "grader"


def engine_modules():
    """Every module of the engine and of its measuring tools (grader_eval), in every package."""
    return sorted([*ENGINE.rglob("*.py"), *(ROOT / "grader_eval").rglob("*.py")])


def test_no_engine_module_names_this_assignment_or_its_functions():
    """The engine knows no assignment: the RNN assignment's names appear only in rnn_course/ and source/."""
    import rnn_course
    names = [rnn_course.ASSIGNMENT, "rnn_course", *rnn_course.GRADED_FUNCTIONS, *rnn_course.OPTIONAL_FUNCTIONS,
             "lstm", "rnn_checks", "checks_data"]
    assert len(engine_modules()) > 40
    found = [(str(path.relative_to(ROOT)), name) for path in engine_modules() for name in names
             if re.search(rf"\b{re.escape(name)}\b", path.read_text(), re.I)]
    assert found == []


def test_the_engine_imports_nothing_of_the_course_and_has_no_cycles():
    """No engine module imports the course; the engine's own imports point down its stages, with no cycle
    (tests/test_layout.py reads every import)."""
    from test_layout import cycles
    for path in engine_modules():
        assert "rnn_course" not in path.read_text(), path
    assert not cycles(), cycles()


@pytest.fixture(scope="module")
def two_assignments(tmp_path_factory):
    """A course with the RNN assignment and `warmup`: released with one `release`, four warmup submissions
    and two RNN ones, graded with one `grade` (the kit) and with `nbgrader autograde` (stock, a copy)."""
    course_dir = two_assignment_course(tmp_path_factory.mktemp("two") / "course")
    released = kit(course_dir, "release")
    assert released.returncode == 0, released.stderr
    layout = assignments.find(course_dir, "warmup")
    right = {name: solutions.master_solutions(layout.master(name)) for name in layout.notebooks}
    first, second = right["warmup"], right[SECOND]
    made = {
        "warmup_correct": right,
        "warmup_blank": {},
        "warmup_wrong_square": {"warmup": {**first, "square": "    return x + x\n"}, SECOND: second},
        "warmup_hidden_only": {"warmup": {**first, "square": "    return abs(x) * x\n"}, SECOND: second},
        "warmup_wrong_answer": {"warmup": {**first, "answer": "answer = 41\n"}, SECOND: {
            **second, "favourite": "favourite = {'colour': 'green', 'numbers': [1, 2]}\n"}},
        "warmup_half_square": {"warmup": {**first, "square": "    return x * x if x < 4 else 0\n"}, SECOND: second},
        "warmup_first_only": {"warmup": first},
    }
    # Two who tamper: one shows every whole number as 2 (its partial credit is 1 of 2), one hands in an answer
    # that equals anything. Stock nbgrader gives both full marks.
    forgers = {
        "forger_partial_credit": {"warmup": {**first, "square": "    return x * x if x < 4 else 0\n", "answer": (
            "answer = 42\nget_ipython().display_formatter.formatters['text/plain'].for_type(\n"
            "    int, lambda value, printer, cycle: printer.text('2'))\n")}, SECOND: second},
        "forger_variable": {"warmup": {**first, "answer": (
            "class Anything(int):\n    def __eq__(self, other):\n        return True\n"
            "    __hash__ = int.__hash__\nanswer = Anything(41)\n")}, SECOND: second},
    }
    made.update(forgers)
    for student, answers in made.items():
        for name in layout.notebooks:
            if student == "warmup_first_only" and name == SECOND:
                continue
            filled = solutions.fill(answers.get(name, {}), layout.release(name))
            solutions.write(filled, course_dir, student, "warmup", name)
    write_samples(course_dir, ["sample_correct", "sample_partial"])
    stock_dir = course_dir.parent / "stock"
    shutil.copytree(course_dir, stock_dir)
    for name in ("warmup", "rnn_step_by_step"):
        done = stock.autograde(stock_dir, name)
        assert done.returncode == 0, done.stderr[-3000:]
    graded = kit(course_dir, "grade", "--cell-timeout", "10")
    return {"course_dir": course_dir, "stock_dir": stock_dir, "graded": graded, "students": list(made),
            "forgers": list(forgers)}


def test_grade_without_a_name_grades_every_assignment_with_submissions(two_assignments):
    graded = two_assignments["graded"]
    assert graded.returncode in (0, 1), graded.stderr[-3000:]
    assert "=== rnn_step_by_step ===" in graded.stdout and "=== warmup ===" in graded.stdout
    course_dir = two_assignments["course_dir"]
    for name in ("warmup", "rnn_step_by_step"):
        assert (course_dir / "autograded" / f"{name}_grades.csv").is_file()
        assert (course_dir / "autograded" / f"{name}_report.html").is_file()
    assert (course_dir / "feedback" / "warmup_correct" / "warmup" / "warmup.html").is_file()


def test_per_cell_scores_are_stock_nbgraders_on_an_assignment_the_engine_never_saw(two_assignments):
    kit_scores = stock.scores(two_assignments["course_dir"], "warmup")
    stock_scores = stock.scores(two_assignments["stock_dir"], "warmup")
    assert set(kit_scores) == set(two_assignments["students"])
    honest = set(kit_scores) - set(two_assignments["forgers"])
    assert {s: kit_scores[s] for s in honest} == {s: stock_scores[s] for s in honest}
    assert kit_scores["warmup_correct"][("warmup", "test_square")] == 2
    assert kit_scores["warmup_hidden_only"][("warmup", "test_square")] == 0, "the hidden test counts"
    assert kit_scores["warmup_wrong_answer"][("warmup", "test_answer")] == 0
    assert kit_scores["warmup_correct"][("warmup", "test_mean_of_data")] == 3, "the shipped data file is there"
    assert kit_scores["warmup_half_square"][("warmup", "test_square_partly")] == 1, "partial credit"
    assert kit_scores["warmup_correct"][(SECOND, "test_favourite")] == 1
    assert kit_scores["warmup_wrong_answer"][(SECOND, "test_favourite")] == 0
    assert kit_scores["warmup_first_only"][(SECOND, "test_cube")] == 0


def test_tests_reading_variables_and_partial_credit_are_judged_outside(two_assignments):
    """No test cell of warmup needs the student's process to judge it: the summary names none."""
    assert "judged inside the sandbox only" not in two_assignments["graded"].stdout.split("=== warmup ===")[1]


def test_tampering_with_a_partial_credit_or_a_variable_read_gains_nothing(two_assignments):
    """Stock nbgrader takes the partial credit the student's process displays and the variable it holds; the
    kit computes both outside it, from plain data."""
    kit_scores = stock.scores(two_assignments["course_dir"], "warmup")
    stock_scores = stock.scores(two_assignments["stock_dir"], "warmup")
    partly, answer = ("warmup", "test_square_partly"), ("warmup", "test_answer")
    assert stock_scores["forger_partial_credit"][partly] == 2, "the trick works on stock nbgrader"
    assert kit_scores["forger_partial_credit"][partly] == 1
    assert stock_scores["forger_variable"][answer] == 1, "the trick works on stock nbgrader"
    assert kit_scores["forger_variable"][answer] == 0
    assert "forger_variable" in two_assignments["graded"].stdout.split("=== warmup ===")[1]


def test_the_course_csv_is_nbgrader_exports_for_every_assignment(two_assignments, tmp_path):
    import csv
    course_dir = two_assignments["course_dir"]
    target = tmp_path / "export.csv"
    subprocess.run([sys.executable, "-m", "nbgrader", "export", f"--CsvExportPlugin.to={target}"], cwd=course_dir,
                   check=True, capture_output=True)
    with open(course_dir / "autograded" / "course_grades.csv") as mine, open(target) as theirs:
        rows, exported = list(csv.DictReader(mine)), list(csv.DictReader(theirs))
    assert {r["assignment"] for r in rows} == {"warmup", "rnn_step_by_step"}
    assert rows == exported
    scores = {(r["assignment"], r["student_id"]): float(r["score"]) for r in rows}
    assert scores[("warmup", "warmup_correct")] == 10.0 and scores[("rnn_step_by_step", "sample_correct")] == 120.0


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    """nbgrader's own example course (`nbgrader quickstart`): ps1, two notebooks, answers graded by hand, a
    task, an image. Four students: the master's answers, the release, a wrong `squares`, and one who handed in
    problem1 only. Graded by the kit and, on a copy, by stock nbgrader."""
    home = tmp_path_factory.mktemp("quickstart")
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    subprocess.run([sys.executable, "-m", "nbgrader", "quickstart", "course101"], cwd=home, env=env, check=True,
                   capture_output=True)
    course_dir = home / "course101"
    released = kit(course_dir, "release", "ps1")
    assert released.returncode == 0, released.stderr
    layout = assignments.find(course_dir, "ps1")
    assert layout.notebooks == ("problem1", "problem2")
    right = {name: solutions.master_solutions(layout.master(name)) for name in layout.notebooks}
    wrong = {**right, "problem1": {**right["problem1"],
                                   "squares": right["problem1"]["squares"].replace("i ** 2", "i * 2")}}
    assert wrong != right
    made = {"alice": right, "bob": {name: {} for name in layout.notebooks}, "carol": wrong,
            "dave": {"problem1": right["problem1"]}}
    for student, answers in made.items():
        for name, filled in answers.items():
            solutions.write(solutions.fill(filled, layout.release(name)), course_dir, student, "ps1", name)
    stock_dir = home / "stock"
    shutil.copytree(course_dir, stock_dir)
    done = stock.autograde(stock_dir, "ps1")
    assert done.returncode == 0, done.stderr[-3000:]
    graded = kit(course_dir, "grade", "ps1")
    return {"course_dir": course_dir, "stock_dir": stock_dir, "graded": graded}


def test_nbgraders_quickstart_course_is_graded_cell_for_cell_as_stock_grades_it(quickstart):
    graded = quickstart["graded"]
    assert graded.returncode in (0, 1), graded.stderr[-3000:]
    mine, theirs = stock.scores(quickstart["course_dir"], "ps1"), stock.scores(quickstart["stock_dir"], "ps1")
    assert set(mine) == {"alice", "bob", "carol", "dave"}
    assert mine == theirs
    assert mine["alice"][("problem1", "correct_squares")] == 1 and mine["carol"][("problem1", "correct_squares")] == 0
    assert mine["alice"][("problem1", "sum_of_squares_application")] is None, "an answer waits for a person"
    assert mine["alice"][("problem2", "part-a")] == 0, "...unless it is left as released"
    assert mine["dave"][("problem2", "part-a")] == 0, "a notebook not handed in is graded as released"
    assert "problem2: not handed in, graded as released" in graded.stdout


def test_every_notebook_gets_its_graded_copy_and_its_feedback_page(quickstart):
    course_dir = quickstart["course_dir"]
    for name in ("problem1", "problem2"):
        assert (course_dir / "autograded" / "alice" / "ps1" / f"{name}.ipynb").is_file()
        page = (course_dir / "feedback" / "alice" / "ps1" / f"{name}.html").read_text()
        assert "ps1" in page
    assert (course_dir / "autograded" / "alice" / "ps1" / "jupyter.png").is_file(), "the assignment's image"
    assert "problem1:correct_squares" in (course_dir / "autograded" / "ps1_grades.csv").read_text()


def test_the_test_that_deletes_a_function_is_replayed_with_the_function_deleted(quickstart):
    """`sum_of_squares_uses_squares` deletes the student's `squares` to see that `sum_of_squares` needs it: the
    recorded call says which functions were deleted when it was made, the student's process makes it again
    without them, and the replay raises the NameError the test expects. No test of ps1 is judged inside."""
    import csv
    out = quickstart["graded"].stdout
    assert "judged inside the sandbox only" not in out
    course_dir = quickstart["course_dir"]
    with open(course_dir / "autograded" / "ps1_grades.csv") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert all(row["judged_inside"] == "" for row in rows.values())
    assert rows["alice"]["problem1:sum_of_squares_uses_squares"] == "0.5", "its full points"


def test_the_benchmark_runs_on_another_assignment_side_by_side_with_stock(tmp_path, capsys):
    """`benchmark warmup`: the engine's own class (the master's answers, the release, half the answers, a file
    cut short) on an assignment of two notebooks, graded by stock and the kit in one run."""
    from grader_eval import benchmark
    course_dir = two_assignment_course(tmp_path / "course")
    code = benchmark.main(course_dir, "warmup", n=5, workdir=tmp_path / "bench", cell_timeout=5,
                          idle_repeats=1)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "per-test scores identical on 4 of 4 submissions" in out and "ratio (stock / sandboxed):" in out


def test_the_course_config_sets_the_cell_timeout_as_it_does_for_stock(tmp_path):
    import argparse

    from grader import cli
    course_dir = two_assignment_course(tmp_path / "course")
    flags = argparse.Namespace(course_dir=str(course_dir), cell_timeout=None, budget=None, memory_mb=2048,
                               output_chars=100_000)
    with open(course_dir / "nbgrader_config.py", "a") as config:
        config.write("\nc.ExecutePreprocessor.timeout = 45\n")
    limits = cli._limits(flags)
    assert (limits.cell_timeout, limits.notebook_budget) == (45, 90)
    flags.cell_timeout = 5
    assert (cli._limits(flags).cell_timeout, cli._limits(flags).notebook_budget) == (5, 60)


def test_a_notebook_for_another_kernel_is_refused_with_the_way_to_grade_it(tmp_path):
    import nbformat
    course_dir = two_assignment_course(tmp_path / "course")
    master = course_dir / "source" / "warmup" / "warmup.ipynb"
    nb = nbformat.read(str(master), as_version=4)
    nb.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    nbformat.write(nb, str(master))
    assert kit(course_dir, "release", "warmup").returncode == 0
    (course_dir / "submitted" / "someone" / "warmup").mkdir(parents=True)
    shutil.copy(course_dir / "release" / "warmup" / "warmup.ipynb", course_dir / "submitted" / "someone" / "warmup")
    result = kit(course_dir, "grade", "warmup")
    assert result.returncode == 2 and "Python notebooks only" in result.stderr
    assert "nbgrader autograde warmup" in result.stderr


def test_an_assignment_that_cannot_be_graded_does_not_hold_up_the_others(two_assignments, tmp_path):
    """`grade` over every assignment: one never released says so (exit 2), the other is graded all the same."""
    course_dir = tmp_path / "course"
    shutil.copytree(two_assignments["course_dir"], course_dir)
    shutil.copytree(course_dir / "source" / "warmup", course_dir / "source" / "another")
    (course_dir / "submitted" / "someone" / "another").mkdir(parents=True)
    result = kit(course_dir, "grade", "--force")
    assert result.returncode == 2
    assert "error: another:" in result.stderr and "release another" in result.stderr
    assert "=== warmup ===" in result.stdout and "warmup: graded 9 submissions" in result.stdout


def test_the_benchmark_takes_a_course_whose_config_names_files_in_source(quickstart, tmp_path, capsys):
    """nbgrader's quickstart config adds source/header.ipynb to every notebook: the benchmark's copies have it."""
    from grader_eval import benchmark
    code = benchmark.main(quickstart["course_dir"], "ps1", n=3, workdir=tmp_path / "bench", cell_timeout=5,
                          idle_repeats=1)
    out = capsys.readouterr().out
    assert code == 0 and "per-test scores identical on 2 of 2 submissions" in out, out


def test_grade_in_a_course_of_several_assignments_without_submissions_says_where_they_go(tmp_path):
    course_dir = two_assignment_course(tmp_path / "course")
    result = kit(course_dir, "grade")
    assert result.returncode == 2 and result.stderr.count("error:") == 1, result.stderr
    assert "no submissions yet" in result.stderr and "rnn_step_by_step, warmup" in result.stderr
    assert "submitted/<student>/<assignment>/<notebook>.ipynb" in result.stderr


def test_a_test_tagged_optional_in_any_notebook_counts_towards_the_optional_part():
    from grader.core.model import AssignmentSpec, NotebookTask
    first = NotebookTask("a", "one", (), (), parts=(("test_x", "graded"),))
    second = NotebookTask("a", "two", (), (), parts=(("test_y", "optional"),))
    both = AssignmentSpec((first, second))
    assert (both.part_of("test_x"), both.part_of("test_y"), both.part_of("unknown")) == ("graded", "optional",
                                                                                         "graded")
