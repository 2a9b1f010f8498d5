"""What a batch leaves behind for people, but its pages (pages.py): the view of a result that
every output shows (the gradebook's scores), the grades CSVs, and who needs the instructor (the terminal's
table and progress bar are grader/terminal.py's, made from these).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from grader.core.model import CRASHED, GRADED, NOT_RUN, RESTORED, TAMPERING, TestResult, TIMED_OUT
from grader.core.plain_text import SpreadsheetWriter
from grader.course import coursedir

if TYPE_CHECKING:
    from grader.core.model import AssignmentSpec, MasterCell, Result
    from grader.course.gradebook import Standing

COURSE_CSV = "course_grades.csv"  # every assignment, in `nbgrader export`'s columns


def grades_csv(name: str) -> str:
    return f"{name}_grades.csv"


def report_html(name: str) -> str:
    return f"{name}_report.html"


def canvas_csv(name: str) -> str:
    return f"{name}_canvas.csv"


PENDING = "not graded yet"


def parts(spec: AssignmentSpec) -> tuple[float, float]:
    """(graded max, optional max): every cell with points, tests and answers graded by hand, as the gradebook
    counts them."""
    points = [(c.grade_id, c.points) for t in spec.notebooks for c in t.cells if c.points is not None]
    graded = sum(p for grade_id, p in points if spec.part_of(grade_id) == "graded")
    return graded, sum(p for _, p in points) - graded


# ---------------------------------------------------------------- the final view

def final(result: Result, standing: Standing | None,
          part_of: Callable[[str], str] = lambda grade_id: "graded") -> Result:
    """`result` with the gradebook's scores, late penalty and comments: what every output shows.

    The gradebook is the one source of scores: a manual grade or extra credit given in
    formgrader replaces the automatic score here as it does in `nbgrader export`. The answers and
    tasks graded by hand join the tests (`by_hand`), so that every total is the gradebook's.
    """
    if standing is None:
        return result
    tests = []
    for test in result.tests:
        cell = standing.cells.get(f"{test.notebook}/{test.grade_id}")
        if cell is not None:  # a test the gradebook does not hold is no grade
            tests.append(dataclasses.replace(test, score=cell.score, max_score=cell.max_score, scored=cell.scored,
                                             manual=cell.manual))
    known = {f"{t.notebook}/{t.grade_id}" for t in tests}
    for key, cell in standing.cells.items():
        if key not in known:
            notebook, grade_id = key.split("/", 1)
            tests.append(TestResult(grade_id, part_of(grade_id), cell.score, cell.max_score, "", cell.scored,
                                    cell.manual, notebook=notebook, by_hand=True))
    return dataclasses.replace(result, tests=tests, late_penalty=standing.late_penalty,
                               instructor_comments=dict(standing.comments),
                               timestamp=standing.timestamp or result.timestamp)


# ---------------------------------------------------------------- who needs the instructor

def graded_by_hand(result: Result) -> bool:
    """An instructor has scored every test of a submission the grader did not grade normally: done."""
    return result.status != GRADED and bool(result.tests) and all(t.manual for t in result.tests)


def needs_attention(result: Result | None) -> bool:
    """Whether a submission, as published, still needs the instructor."""
    return (result is None or result.awaiting_manual_grade or bool(result.refused) or bool(result.forgeable)
            or (result.status != GRADED and not graded_by_hand(result)))


# ---------------------------------------------------------------- grades CSV

def labels(spec: AssignmentSpec) -> list[str]:
    """A name per cell with points (tests, and answers graded by hand), for columns: its grade_id without a
    `test_` prefix, after its notebook's name when the assignment has several."""
    return [_label(spec, notebook, c.grade_id) for notebook, c in spec.graded_cells()]


def test_labels(spec: AssignmentSpec) -> list[tuple[str, MasterCell]]:
    """(label, MasterCell) of each test cell, for the charts of tests."""
    return [(_label(spec, notebook, c.grade_id), c) for notebook, c in spec.tests()]


def _label(spec: AssignmentSpec, notebook: str, grade_id: str) -> str:
    name = grade_id.removeprefix("test_")
    return f"{notebook}:{name}" if spec.several else name


def label_of(spec: AssignmentSpec, test: TestResult) -> str:
    return _label(spec, test.notebook, test.grade_id)


CSV_NUMBERS = ["raw_score", "late_submission_penalty", "score", "max_score"]  # as `nbgrader export` names them


def write_grades_csv(path: Path, results: Mapping[str, Result | None], spec: AssignmentSpec,
                     lms_ids: Mapping[str, str]) -> Path:
    """One row per student. Every number is the gradebook's (see `final`), so that this file and
    `nbgrader export` agree; a test waiting for a manual grade has no number of its own."""
    names = labels(spec)
    max_score = sum(parts(spec))
    with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
        out = SpreadsheetWriter(f)
        out.writerow(["student", "lms_id", "status", "late", "timestamp"] + CSV_NUMBERS + ["graded", "optional"]
                     + names + ["hand_graded", "reason", "graded_at", "review_flags", "confinement", "judged_inside"])
        for student, result in sorted(results.items()):
            lms = lms_ids.get(student, "")
            if result is None:
                out.writerow([student, lms, PENDING, "", "", "", "", "", f"{max_score:g}", "", ""]
                             + [""] * len(names) + ["", f"run `{coursedir.hint('grade ' + spec.name)}` to grade "
                                                        "it", "", "", "", ""])
                continue
            scores = {label_of(spec, t): (f"{t.score:g}" if t.scored else "") for t in result.tests}
            status = result.status + (f" (awaiting a manual grade: {result.points_waiting:g} points)"
                                      if result.awaiting_manual_grade else "")
            # Not scored yet: no number at all (nbgrader export writes 0), so that an LMS import records no
            # grade rather than a zero.
            def number(value, blank=result.awaiting_manual_grade):
                return "" if blank else f"{value:g}"
            out.writerow([student, lms, status, "late" if result.late else "", result.timestamp or "",
                          number(result.total), number(result.late_penalty), number(result.score), f"{max_score:g}",
                          number(result.part("graded")), number(result.part("optional"))]
                         + [scores.get(n, "") for n in names]
                         + ["; ".join(label_of(spec, t) for t in result.tests if t.manual),
                            result.reason, result.graded_at, "; ".join(result.review),
                            confinement(result), "; ".join(inside_labels(spec, result))])
    return path


# Canvas's gradebook import: these columns first, then one per assignment, headed by its name (a new name makes a
# new Canvas assignment; an existing one's column, as a Canvas export heads it, updates that assignment).
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def write_canvas_csv(path: Path, results: Mapping[str, Result | None], spec: AssignmentSpec,
                     lms_ids: Mapping[str, str]) -> Path:
    """The grades as Canvas's gradebook imports them, keyed by the Canvas user ID that `collect` recorded
    (a student without one is left out: Canvas could not tell who it is). Points possible are the graded part's; the
    score is nbgrader's (optional part included, as extra credit, late penalty taken off); blank while
    it awaits a manual grade, so that Canvas records nothing rather than a zero."""
    graded_max, _ = parts(spec)
    with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
        out = SpreadsheetWriter(f)
        out.writerow(CANVAS_COLUMNS + [spec.name])
        out.writerow(["Points Possible", "", "", "", "", f"{graded_max:g}"])
        for student, result in sorted(results.items()):
            if lms_ids.get(student):
                score = "" if result is None or result.awaiting_manual_grade else f"{result.score:g}"
                out.writerow([student, lms_ids[student], "", "", "", score])
    return path


def inside_labels(spec: AssignmentSpec, result: Result) -> list[str]:
    """The tests of `result` that were judged inside the sandbox only (the outside verdict could not replay them)."""
    return [_label(spec, *key.split("/", 1)) for key in result.inside]


def confinement(result: Result) -> str:
    return "sandboxed" if result.confined else "UNCONFINED (--unconfined): student code ran with your rights"


UNCONFINED_WARNING = ("WARNING: {n} submission(s) were graded with --unconfined: their code ran with your rights, "
                      "could read the master notebook and the gradebook, and their scores can be forged. "
                      "Grade them again without --unconfined.")


def unconfined(results: Mapping[str, Result | None]) -> list[str]:
    return sorted(s for s, r in results.items() if r is not None and not r.confined)


def review_lines(results: Mapping[str, Result | None]) -> list[str]:
    """'student: flag; flag' for each submission whose code the scan flagged."""
    return [f"{s}: " + "; ".join(r.review) for s, r in sorted(results.items()) if r is not None and r.review]


def attention_line(result: Result | None) -> str:
    """The instructor's line for a submission that was not graded normally: what happened, what to do."""
    if result is None:
        return f"not graded yet: run `{coursedir.hint('grade')}`"
    text = result.reason
    if result.status in NOT_RUN:
        text += (". Grade it by hand in formgrader" + (" (done)" if not result.awaiting_manual_grade else "")
                 + ", or ask the student for a fresh copy and grade again")
    elif result.status in WHAT_TO_DO:
        text += ". " + WHAT_TO_DO[result.status]
    return text


# The instructor's next step for a submission that ran but was not graded normally (see attention_line).
WHAT_TO_DO = {
    TAMPERING: "Read the named test's cells in the autograded notebook; the test scores 0 until you give its points "
               "in formgrader",
    CRASHED: "The tests after the stop score 0; if the cause is the grader's limits (memory, output), grade it again "
             "with higher ones",
    TIMED_OUT: "The stopped cells' tests score 0; if the code is only slow, grade it again with a longer "
               "--cell-timeout",
    RESTORED: "Nothing to do: the original tests were run; the student's edits are in their submitted notebook",
}
