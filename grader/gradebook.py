"""The kit's only access to nbgrader's gradebook: read the master cells, write results.

All writes go through nbgrader's `Gradebook` API from one process, one result at
a time, so `nbgrader export`, `nbgrader formgrader` and manual grading keep
working on the same database. Scores are written the way stock autograde's
SaveAutoGrades writes them: only `auto_score` changes, and a cell that already has
a manual grade is flagged for review instead of overwritten.
"""
import sqlite3
import time
import warnings
from pathlib import Path

from sqlalchemy.exc import SAWarning

from .grading import ERROR, INVALID, MasterCell, Result
from .release import KitError

# nbgrader's gradebook code triggers SQLAlchemy warnings that say nothing about the grades.
warnings.filterwarnings("ignore", category=SAWarning)


def open_gradebook(api):
    from nbgrader.api import Gradebook
    return Gradebook(api.coursedir.db_url, api.coursedir.course_id)


def master_cells(api, assignment, notebook, order, released):
    """The master's cells as nbgrader stored them at generate_assignment, in the notebook's order.

    `order` is the list of grade_ids in the order of the source notebook; `released`
    maps grade_id to the cell's source in the student version.
    """
    from nbgrader.api import MissingEntry

    with open_gradebook(api) as gb:
        try:
            nb = gb.find_notebook(notebook, assignment)
        except MissingEntry:
            raise KitError(f"the gradebook {api.coursedir.db_url} knows no notebook {notebook!r} in assignment "
                           f"{assignment!r}. Run `python -m grader release` (nbgrader generate_assignment) "
                           "first; it records the master's test cells in the gradebook.") from None
        points = {c.name: float(c.max_score) for c in nb.grade_cells}
        solutions = {c.name for c in nb.solution_cells}
        cells = {c.name: MasterCell(c.name, c.cell_type, c.source, bool(c.locked), c.checksum,
                                    points.get(c.name), c.name in solutions, released.get(c.name))
                 for c in nb.source_cells}
    position = {grade_id: i for i, grade_id in enumerate(order)}
    return tuple(sorted(cells.values(), key=lambda c: position.get(c.grade_id, len(position))))


BACKUPS = "gradebook-backups"  # in the course directory, beside gradebook.db
KEEP_BACKUPS = 5


def backup(course_dir, keep=KEEP_BACKUPS):
    """Copy gradebook.db with SQLite's backup API (consistent even while in use); keep the last `keep`."""
    database = Path(course_dir) / "gradebook.db"
    if not database.exists():
        return None
    folder = Path(course_dir) / BACKUPS
    folder.mkdir(exist_ok=True)
    target = folder / time.strftime("gradebook-%Y%m%d-%H%M%S.db")
    number = 1
    while target.exists():  # two batches in one second
        number += 1
        target = folder / time.strftime(f"gradebook-%Y%m%d-%H%M%S-{number}.db")
    source = sqlite3.connect(database)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    for old in sorted(folder.glob("gradebook-*.db"), key=lambda p: p.stat().st_mtime)[:-keep]:
        old.unlink()
    return target


def graded_students(api, assignment):
    """Students that have a submission of `assignment` in the gradebook."""
    with open_gradebook(api) as gb:
        return {s.student_id for s in gb.find_assignment(assignment).submissions} \
            if _has_assignment(gb, assignment) else set()


def _has_assignment(gb, assignment):
    from nbgrader.api import MissingEntry
    try:
        gb.find_assignment(assignment)
        return True
    except MissingEntry:
        return False


def lms_ids(api):
    """student id -> LMS user id, for the students that have one."""
    with open_gradebook(api) as gb:
        return {s.id: s.lms_user_id for s in gb.students if s.lms_user_id}


class Writer:
    """Writes results into the gradebook; one instance, in the process that collects results."""

    def __init__(self, api, assignment, notebook):
        self.gb = open_gradebook(api)
        self.assignment, self.notebook = assignment, notebook

    def close(self):
        self.gb.close()

    def write(self, result: Result):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SAWarning)
            self._write(result)

    def _write(self, result):
        from nbgrader.api import MissingEntry

        gb = self.gb
        try:
            gb.find_student(result.student)
        except MissingEntry:
            gb.add_student(result.student)  # as stock autograde's create_student
        extra = {"timestamp": result.timestamp} if result.timestamp else {}
        gb.update_or_create_submission(self.assignment, result.student, **extra)
        submitted = gb.find_submission_notebook(self.notebook, self.assignment, result.student)
        scores = {t.grade_id: t.score for t in result.tests}
        for grade in submitted.grades:
            if result.status in (INVALID, ERROR):
                # Nothing trustworthy ran: leave no automatic zero, ask for a person instead.
                grade.auto_score, grade.needs_manual_grade = None, True
                continue
            grade.auto_score = scores.get(grade.name)
            grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
        for comment in submitted.comments:
            if comment.name in result.comments:
                comment.auto_comment = result.comments[comment.name]
        gb.db.commit()
