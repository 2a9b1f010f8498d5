"""Hand grading without a browser: what waits for a hand grade, out to a CSV; the filled CSV, back in.

For instructors who grade offline, or with teaching assistants in a spreadsheet. The layout is one row per cell:
`student, notebook, cell, score, max_score, comment`, and `answer` (what the student wrote, to read; `import`
ignores it). `export` writes every cell of the assignment that still waits for a hand grade (score and comment
blank, to fill in); with `every`, every answer graded by hand, with its score as it stands. `import` reads such a file and writes each score
and comment through nbgrader's own API, as formgrader's grade and comment boxes do (the manual score set, and
`needs_manual_grade` cleared once a cell has a score). It checks every row first: an unknown student, notebook
or cell, a score that is not a number or lies outside 0 to the cell's points, each gets one line, and then
nothing at all is written. The gradebook is backed up before anything is.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from grader.core.errors import KitError
from grader.core.notebook import nbgrader_meta
from grader.core.plain_text import for_terminal, SpreadsheetWriter
from grader.course import gradebook

if TYPE_CHECKING:
    from nbgrader.coursedir import CourseDirectory

    from grader.course.assignments import Layout

COLUMNS = ["student", "notebook", "cell", "score", "max_score", "comment"]
ANSWER_CHARS = 2000  # of each answer, in the export


def waiting(course: CourseDirectory, layout: Layout, every: bool = False) -> list[list[str]]:
    """Rows of every cell of the assignment still waiting for a hand grade (`every`: every answer graded by hand,
    scored or not), by student, notebook and cell, with the student's answer."""
    rows = []
    with gradebook.open_gradebook(course) as gb:
        for submission in gb.assignment_submissions(layout.name):
            student = submission.student.id
            for notebook in submission.notebooks:
                answers = None
                for grade in notebook.grades:
                    if grade.needs_manual_grade or (every and (grade.cell.cell_type == "markdown"
                                                               or _is_answer(grade))):
                        if answers is None:
                            answers = _answers(layout, student, notebook.name)
                        given = grade.manual_score if grade.manual_score is not None else grade.auto_score
                        score = "" if grade.needs_manual_grade or given is None else f"{given:g}"  # no extra credit
                        rows.append([student, notebook.name, grade.name, score, f"{grade.max_score:g}", "",
                                     answers.get(grade.name, "")[:ANSWER_CHARS]])
    return sorted(rows)


def _is_answer(grade):
    """A cell that is an answer (a solution cell with points), not a test."""
    return any(cell.name == grade.name for cell in grade.notebook.notebook.solution_cells)


def _answers(layout, student, notebook):
    """grade_id -> what the student wrote there, from their graded notebook (plain JSON; nothing is run)."""
    import json

    from grader.core import student_files
    text, _ = student_files.read_record(layout.autograded(student), f"{notebook}.ipynb", limit=32 * 1024 * 1024)
    try:
        cells = json.loads(text or "{}").get("cells", [])
    except (ValueError, AttributeError):
        return {}
    found = {}
    for cell in cells if isinstance(cells, list) else ():
        meta = nbgrader_meta(cell) if isinstance(cell, dict) else {}
        source = cell.get("source", "") if isinstance(cell, dict) else ""
        if isinstance(meta, dict) and isinstance(meta.get("grade_id"), str):
            found[meta["grade_id"]] = "".join(source) if isinstance(source, list) else str(source)
    return found


def export(course: CourseDirectory, layout: Layout, path: str | Path, every: bool = False) -> int:
    """Write what waits for a hand grade (`every`: every answer graded by hand) to `path`; returns how many."""
    rows = waiting(course, layout, every)
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = SpreadsheetWriter(f)
        out.writerow(COLUMNS + ["answer"])
        for row in rows:
            out.writerow(row)
    return len(rows)


@dataclass
class Imported:
    scores: int = 0                                   # cells given a score
    comments: int = 0                                 # cells given a comment
    problems: list[str] = field(default_factory=list)  # one line per row that cannot be taken (then nothing is)
    backup: Path | None = None                        # the gradebook's copy made before the grades were written


def import_grades(course: CourseDirectory, course_dir: str | Path, name: str, path: str | Path) -> Imported:
    """Check every row of `path`, then write them all into the grades of the assignment called `name`, or none
    when any row cannot be taken."""
    rows = _read(path)
    done = Imported()
    with gradebook.open_gradebook(course) as gb:
        changes = []
        for line, row in rows:
            change = _checked(gb, name, line, row, done.problems)
            if change is not None:
                changes.append(change)
        if done.problems:
            return done
        done.backup = gradebook.backup(course_dir)
        done.scores, done.comments = gradebook.write_manual_grades(gb, changes)
    return done


def _read(path):
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            table = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise KitError(f"{path} cannot be read as a CSV file ({error}). Give the file `manual-grades export` "
                       "wrote, filled in.") from None
    if not table or [cell.strip().lower() for cell in table[0][:len(COLUMNS)]] != COLUMNS:  # `answer` may follow
        raise KitError(f"{path} does not start with the header {','.join(COLUMNS)}: give the file "
                       "`manual-grades export` wrote, filled in.")
    return [(number, [_text(cell) for cell in row]) for number, row in enumerate(table[1:], 2)
            if any(cell.strip() for cell in row)]


def _text(cell):
    """A cell as written, without the quote a spreadsheet-safe CSV puts before a formula-like start."""
    cell = cell.strip()
    return cell[1:] if cell.startswith("'") and cell[1:2] in ("=", "+", "-", "@") else cell


def _checked(gb, name, line, row, problems):
    """(grade, comment, score or None, comment text or None) for one row, or None with a line in `problems`."""
    from nbgrader.api import MissingEntry

    row = (row + [""] * len(COLUMNS))[:len(COLUMNS)]
    student, notebook, cell, score_text, _, text = row
    where = f"line {line} ({for_terminal(student, one_line=True)[:40]}, {for_terminal(notebook, one_line=True)[:40]}, " \
            f"{for_terminal(cell, one_line=True)[:40]})"
    try:
        submitted = gb.find_submission_notebook(notebook, name, student)
    except MissingEntry:
        problems.append(f"{where}: no submission of {notebook} by {student} in the gradebook")
        return None
    grade = next((g for g in submitted.grades if g.name == cell), None)
    comment = next((c for c in submitted.comments if c.name == cell), None)
    if grade is None and comment is None:
        problems.append(f"{where}: {notebook} has no graded cell {cell}")
        return None
    score = None
    if score_text:
        try:
            score = float(score_text)
        except ValueError:
            score = math.nan
        if grade is None:
            problems.append(f"{where}: {cell} takes a comment, not a score")
            return None
        if not 0 <= score <= grade.max_score:  # NaN fails this too
            problems.append(f"{where}: the score {for_terminal(score_text, one_line=True)[:20]} is not a number "
                            f"from 0 to {grade.max_score:g}")
            return None
    if text and comment is None:
        problems.append(f"{where}: {cell} takes a score, not a comment")
        return None
    return grade, comment, score, (text or None)
