"""The kit's only access to nbgrader's gradebook: read the master cells, write results.

All writes go through nbgrader's `Gradebook` API from one process, one result at
a time, so `nbgrader export`, `nbgrader formgrader` and manual grading keep
working on the same database. Scores are written the way stock autograde's
SaveAutoGrades writes them: only `auto_score` changes, and a cell that already has
a manual grade is flagged for review instead of overwritten. A submission whose status is
not plain "graded" gets formgrader's flag on each of its notebooks (the reason heads its graded notebook).
"""
from __future__ import annotations

import sqlite3
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SAWarning

from grader.core.errors import KitError
from grader.core.model import ERROR, GRADED, MasterCell, Result
from grader.course import coursedir

if TYPE_CHECKING:
    from nbgrader.api import Gradebook, SubmittedAssignment, SubmittedNotebook
    from nbgrader.coursedir import CourseDirectory

# nbgrader's gradebook code triggers SQLAlchemy warnings that say nothing about the grades.
warnings.filterwarnings("ignore", category=SAWarning)


def open_gradebook(course: CourseDirectory) -> Gradebook:
    from nbgrader.api import Gradebook
    return Gradebook(course.db_url, course.course_id)


def master_cells(course: CourseDirectory, name: str, notebook: str, order: Sequence[str | None],
                 released: Mapping[str | None, str]) -> tuple[MasterCell, ...]:
    """The master's cells of `notebook` in the assignment called `name`, as nbgrader stored them at
    generate_assignment, in the notebook's order.

    `order` is the list of grade_ids in the order of the source notebook (None for a cell without one); `released`
    maps grade_id to the cell's source in the student version.
    """
    from nbgrader.api import MissingEntry

    with open_gradebook(course) as gb:
        try:
            nb = gb.find_notebook(notebook, name)
        except MissingEntry:
            raise KitError(f"the gradebook {course.db_url} knows no notebook {notebook!r} in assignment "
                           f"{name!r}. Run `{coursedir.hint('release ' + name)}` (nbgrader "
                           "generate_assignment) "
                           "first; it records the master's test cells in the gradebook.") from None
        points = {c.name: float(c.max_score) for c in nb.grade_cells}
        solutions = {c.name for c in nb.solution_cells}
        cells = {c.name: MasterCell(c.name, c.cell_type, c.source, bool(c.locked), c.checksum,
                                    points.get(c.name), c.name in solutions, released.get(c.name))
                 for c in nb.source_cells}
    position = {grade_id: i for i, grade_id in enumerate(order)}
    return tuple(sorted(cells.values(), key=lambda c: position.get(c.grade_id, len(position))))


def database_file(course_dir: str | Path) -> Path | None:
    """The gradebook's file, as the config's `c.CourseDirectory.db_url` names it (None: not an SQLite file)."""
    from sqlalchemy.engine import make_url

    url = make_url(coursedir.course_directory(course_dir).db_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(course_dir, url.database)  # a relative path is nbgrader's, from the course directory


def check(course_dir: str | Path) -> None:
    """Refuse, with the fix, a gradebook that is damaged, foreign or locked, before anything is written."""
    database = database_file(course_dir)
    if database is None or not database.exists():
        return  # another database server checks its own; nbgrader creates a missing file
    with open(database, "rb") as f:
        header = f.read(16)
    if header and header != b"SQLite format 3\x00":
        raise KitError(f"{database} is not an SQLite database (damaged, or another kind of file); it was left as it "
                       f"is. Restore a copy from {BACKUPS}/ (see the README), or move it aside and run "
                       f"`{coursedir.hint('release')}` to start a new gradebook.")
    try:
        connection = sqlite3.connect(database, timeout=2)
        try:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and not {"assignment", "student", "grade"} <= tables:
                raise KitError(f"{database} is an SQLite database, but not an nbgrader gradebook (its tables: "
                               f"{', '.join(sorted(tables)[:6])}); nothing was written to it. Move it aside, or give "
                               "--course-dir the course it belongs to.")
            connection.execute("BEGIN IMMEDIATE")  # the write lock, as a grading run will need it
            connection.rollback()
        finally:
            connection.close()
    except sqlite3.OperationalError as error:
        if "locked" in str(error):
            raise KitError(locked_message(database)) from None
        raise KitError(f"{database} cannot be read ({error}); it was left as it is. Restore a copy from "
                       f"{BACKUPS}/ (see the README), or move it aside and run `{coursedir.hint('release')}`.") from None
    except sqlite3.DatabaseError as error:
        raise KitError(f"{database} is damaged ({error}); it was left as it is. Restore a copy from {BACKUPS}/ "
                       f"(see the README), or move it aside and run `{coursedir.hint('release')}`.") from None


def locked_message(database: str | Path) -> str:
    return (f"the gradebook {database} is in use: another program holds its write lock (another grading run, "
            "or nbgrader saving). Nothing was lost: what was graded before is in it. Wait for the other program "
            "to finish (or stop it), then run the same command again.")


BACKUPS = "gradebook-backups"  # in the course directory, beside gradebook.db
KEEP_BACKUPS = 5


def backup(course_dir: str | Path, keep: int = KEEP_BACKUPS) -> Path | None:
    """Copy the gradebook with SQLite's backup API (consistent even while in use); keep the last `keep`."""
    database = database_file(course_dir)
    if database is None or not database.exists():
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


def graded_students(course: CourseDirectory, name: str) -> set[str]:
    """Students that have a submission of the assignment called `name` in the gradebook."""
    with open_gradebook(course) as gb:
        return {s.student_id for s in gb.find_assignment(name).submissions} \
            if _has_assignment(gb, name) else set()


def _has_assignment(gb, name):
    from nbgrader.api import MissingEntry
    try:
        gb.find_assignment(name)
        return True
    except MissingEntry:
        return False


def roster(course: CourseDirectory) -> set[str]:
    """Every student id in the gradebook."""
    with open_gradebook(course) as gb:
        return {s.id for s in gb.students}


def strangers(course: CourseDirectory, course_dir: str | Path) -> tuple[list[str], list[str]]:
    """(students, assignments) the gradebook holds that have no folder anywhere in the course: a student with no
    submitted/, autograded/ or feedback/ folder, an assignment with no source/ or release/ folder. Another tool
    run in this folder put them there (`nbgrader quickstart` run here adds its example's students)."""
    course_dir = Path(course_dir)
    with open_gradebook(course) as gb:
        students = sorted(s.id for s in gb.students
                          if not any((course_dir / top / s.id).exists() for top in ("submitted", "autograded",
                                                                                     "feedback")))
        names = sorted(a.name for a in gb.assignments
                       if not any((course_dir / top / a.name).exists() for top in ("source", "release")))
    return students, names


def record_lms_ids(course: CourseDirectory, lms_ids: Mapping[str, str]) -> None:
    """Each student's LMS user id ({student: id}), as formgrader's roster keeps it; students new to the gradebook
    are added."""
    with open_gradebook(course) as gb:
        for student, lms_id in lms_ids.items():
            gb.update_or_create_student(student, lms_user_id=lms_id)


def remove_students(course: CourseDirectory, students: Iterable[str]) -> list[str]:
    """Take `students` out of the gradebook, with their submissions, grades and comments; returns those it held."""
    from nbgrader.api import MissingEntry

    removed = []
    with open_gradebook(course) as gb:
        for student in students:
            try:
                gb.remove_student(student)
                removed.append(student)
            except MissingEntry:
                pass  # only folders of theirs, or nothing
    return removed


def write_manual_grades(gb: Gradebook, changes: Iterable[tuple[Any, Any, float | None, str | None]]
                        ) -> tuple[int, int]:
    """Hand grades and comments, as formgrader's grade and comment boxes write them, in one commit: `changes`
    holds (grade, comment, score or None, comment text or None), read in the open gradebook `gb`. Returns (scores
    written, comments written)."""
    scores = comments = 0
    for grade, comment, score, text in changes:
        if score is not None:
            grade.manual_score = score
            grade.needs_manual_grade = grade.manual_score is None and grade.auto_score is None
            scores += 1
        if text is not None and comment is not None:
            comment.manual_comment = text
            comments += 1
    gb.db.commit()
    return scores, comments


def lms_ids(course: CourseDirectory) -> dict[str, str]:
    """student id -> LMS user id, for the students that have one."""
    with open_gradebook(course) as gb:
        return {s.id: s.lms_user_id for s in gb.students if s.lms_user_id}


class Writer:
    """Writes results into the gradebook; one instance, in the process that collects results."""

    def __init__(self, course: CourseDirectory, name: str, notebooks: Iterable[str]) -> None:
        """A writer of results of the assignment called `name`, with these notebooks."""
        self.gb = open_gradebook(course)
        self.name, self.notebooks = name, list(notebooks)
        self.late = LatePolicy(course)
        self._names: dict[str, dict[Any, str]] = {}
        self._written = 0

    def close(self) -> None:
        self.gb.close()

    def rollback(self) -> None:
        """Forget a write that failed halfway, so that the next student's starts clean."""
        try:
            self.gb.db.rollback()
        except Exception:
            pass  # the session is gone with the error; the next write opens a new transaction

    def write(self, result: Result) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SAWarning)
            self._write(result)
        # Written and committed: the session need not remember the rows (a class of 1,000 would keep them all),
        # though forgetting them after each student would load the assignment's own again for the next.
        self._written += 1
        if self._written % 100 == 0:
            self.gb.db.expunge_all()

    def _write(self, result):
        from nbgrader.api import MissingEntry

        gb = self.gb
        try:
            gb.find_student(result.student)
        except MissingEntry:
            gb.add_student(result.student)  # as stock autograde's create_student
        extra = {"timestamp": result.timestamp} if result.timestamp else {}
        gb.update_or_create_submission(self.name, result.student, **extra)
        tests = {f"{t.notebook}/{t.grade_id}": t for t in result.tests}
        for notebook in self.notebooks:
            submitted = gb.find_submission_notebook(notebook, self.name, result.student)
            names = self._cell_names(notebook)
            for grade in submitted.grades:
                name = f"{notebook}/{names.get(grade.cell_id) or grade.name}"
                test = tests.get(name)
                if result.status == ERROR or (test is not None and not test.scored):
                    # Nothing trustworthy ran: leave no automatic zero, ask for a person instead.
                    grade.auto_score, grade.needs_manual_grade = None, True
                    continue
                grade.auto_score = test.score if test is not None else result.answers.get(name)
                grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
            for comment in submitted.comments:
                name = f"{notebook}/{names.get(comment.cell_id) or comment.name}"
                if name in result.comments:
                    comment.auto_comment = result.comments[name]
            if result.status != GRADED:
                submitted.flagged = True  # formgrader's flag; only a person takes it off
            gb.db.commit()
            self._late_penalty(result.student, submitted)

    def _cell_names(self, notebook):
        """cell id -> name of the notebook's graded, solution and task cells, read once: the same for every
        student, and asking each grade row for its cell's name costs a query per cell."""
        if notebook not in self._names:
            found = self.gb.find_notebook(notebook, self.name)
            self._names[notebook] = {c.id: c.name for c in
                                     [*found.grade_cells, *found.solution_cells, *found.task_cells]}
        return self._names[notebook]

    def _late_penalty(self, student, submitted):
        submission = self.gb.find_submission(self.name, student)
        if submission.total_seconds_late <= 0 and submitted.late_submission_penalty is None:
            return  # on time, as recorded: nothing to write
        self.gb.db.refresh(submitted)
        submitted.late_submission_penalty = self.late.penalty(submission, submitted)
        self.gb.db.commit()


class LatePolicy:
    """The course's late-penalty plugin (c.AssignLatePenalties.plugin_class, c.LateSubmissionPlugin...), made at
    the first late submission: it comes with nbgrader's preprocessors, half a second of imports that a class
    handed in on time never needs."""

    def __init__(self, course: CourseDirectory) -> None:
        self.course = course
        self._plugin: Any = None

    def penalty(self, submission: SubmittedAssignment, submitted: SubmittedNotebook) -> float | None:
        """As stock autograde's AssignLatePenalties: the plugin's penalty on the notebook's score, clamped;
        None when the submission is on time (or has no time, or the assignment no due date)."""
        late = submission.total_seconds_late
        if late <= 0:
            return None
        if self._plugin is None:
            from nbgrader.preprocessors import AssignLatePenalties

            made = AssignLatePenalties(config=self.course.config)
            made.init_plugin()
            self._plugin = made.plugin_inst
        penalty = self._plugin.late_submission_penalty(submission.student_id, submitted.score, late)
        return None if penalty is None else min(max(penalty, 0.0), submitted.score)


def reapply_late_penalties(course: CourseDirectory, name: str) -> list[str]:
    """Every submission's late penalty as the course's settings give it now: the due date (and any
    extension) and the late policy may have changed since it was graded, and manual grades may have
    changed the score it is taken from. Written to the gradebook, so that `nbgrader export` agrees.
    Returns the students whose penalty changed."""
    late = LatePolicy(course)
    changed = set()
    with open_gradebook(course) as gb:
        if not _has_assignment(gb, name):
            return []
        for submission in gb.find_assignment(name).submissions:
            for submitted in submission.notebooks:
                penalty = late.penalty(submission, submitted)
                if penalty != submitted.late_submission_penalty:
                    submitted.late_submission_penalty = penalty
                    changed.add(submission.student_id)
        if changed:
            gb.db.commit()
    return sorted(changed)


# ---------------------------------------------------------------- reading the final grades

@dataclass
class CellGrade:
    """One test cell's grade as nbgrader computes it (manual score over automatic, plus extra credit)."""
    score: float        # what nbgrader counts; 0 when nobody has scored it yet
    max_score: float
    scored: bool        # False while the cell waits for a manual grade and has no automatic one
    manual: bool        # an instructor gave the score in formgrader
    extra_credit: float


@dataclass
class Standing:
    """A student's grades for the assignment, read back from the gradebook: the one source of scores."""
    student: str
    cells: dict[str, CellGrade]  # "<notebook>/<grade_id>" -> its grade
    comments: dict[str, str]  # "<notebook>/<grade_id>" -> the instructor's comment from formgrader
    raw_score: float     # nbgrader's submission score (sum of the cells, extra credit included)
    late_penalty: float
    max_score: float
    timestamp: str = ""
    needs_manual_grade: bool = False

    @property
    def score(self) -> float:
        """The final score, as `nbgrader export` computes it."""
        return max(0.0, self.raw_score - self.late_penalty)


def standings(course: CourseDirectory, assignment_name: str) -> dict[str, Standing]:
    """student -> Standing, for every submission of the assignment called `assignment_name` in the gradebook, all
    its notebooks.

    Three queries over nbgrader's own mapped tables (walking the ORM objects instead costs a query per
    grade: seconds for a class). Scores follow nbgrader's `Grade.score`: the manual score if there is
    one, else the automatic one, plus extra credit; 0 when neither is set.
    """
    from nbgrader.api import (Assignment, BaseCell, Comment, Grade, GradeCell, Notebook, SubmittedAssignment,
                              SubmittedNotebook)

    with open_gradebook(course) as gb:
        def query(*columns):
            return (gb.db.query(*columns).select_from(SubmittedNotebook)
                    .join(SubmittedAssignment, SubmittedNotebook.assignment_id == SubmittedAssignment.id)
                    .join(Assignment, SubmittedAssignment.assignment_id == Assignment.id)
                    .join(Notebook, SubmittedNotebook.notebook_id == Notebook.id)
                    .filter(Assignment.name == assignment_name))

        found: dict[str, Standing] = {}
        for student, penalty, stamp in query(SubmittedAssignment.student_id, SubmittedNotebook.late_submission_penalty,
                                             SubmittedAssignment.timestamp):
            mine = found.setdefault(student, Standing(student, {}, {}, 0.0, 0.0, 0.0, str(stamp or "")))
            mine.late_penalty += float(penalty or 0.0)  # nbgrader export: the notebooks' penalties, summed
        grades = (query(SubmittedAssignment.student_id, Notebook.name, GradeCell.name, GradeCell.max_score,
                        Grade.auto_score, Grade.manual_score, Grade.extra_credit, Grade.needs_manual_grade)
                  .join(Grade, Grade.notebook_id == SubmittedNotebook.id)
                  .join(GradeCell, Grade.cell_id == GradeCell.id))
        for student, notebook, name, max_score, auto, manual, extra, needs_manual in grades:
            name = f"{notebook}/{name}"
            extra = float(extra or 0.0)
            given = manual if manual is not None else auto
            score = float(given) + extra if given is not None else 0.0
            mine = found[student]
            mine.cells[name] = CellGrade(score, float(max_score), given is not None, manual is not None, extra)
            mine.raw_score += score
            mine.max_score += float(max_score)
            mine.needs_manual_grade |= bool(needs_manual)
        comments = (query(SubmittedAssignment.student_id, Notebook.name, BaseCell.name, Comment.manual_comment)
                    .join(Comment, Comment.notebook_id == SubmittedNotebook.id)
                    .join(BaseCell, Comment.cell_id == BaseCell.id))
        for student, notebook, name, text in comments:
            if (text or "").strip():
                found[student].comments[f"{notebook}/{name}"] = text
    return found
