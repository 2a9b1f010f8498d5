"""The assignments of a course directory, where nbgrader keeps each of their files.

Everything here is read from the course directory: an assignment is a folder of
source/ holding master notebooks, as `nbgrader generate_assignment` reads it. The
engine never names one.

A test cell counts towards the "optional" part when the master gives it the cell tag
`optional` (View > Cell Toolbar > Tags in Jupyter); every other test cell is "graded".
The summary, the CSV and the reports keep the two parts apart.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grader.core import notebook
from grader.core.errors import KitError
from grader.course import coursedir

if TYPE_CHECKING:
    from nbformat import NotebookNode

# The records nbgrader and the kit keep beside a student's files in submitted/<student>/<assignment>/: never the
# student's own, never graded, never overwritten by a student's file of the same name.
LATE_FILE = ".lms_late"  # the LMS marked the submission late (written by collect)
RECORDS = ("timestamp.txt", "submission_secret.txt", LATE_FILE)

OPTIONAL_TAG = "optional"


@dataclass(frozen=True)
class Layout:
    """One assignment's folders in nbgrader's layout: {course}/{step}/{student}/{assignment}/{notebook}.ipynb."""
    course_dir: Path
    name: str

    @property
    def source_dir(self) -> Path:
        return self.course_dir / "source" / self.name

    @property
    def release_dir(self) -> Path:
        return self.course_dir / "release" / self.name

    @property
    def notebooks(self) -> tuple[str, ...]:
        """The master notebooks' names without .ipynb, sorted (as nbgrader orders them)."""
        return tuple(sorted(p.stem for p in self.source_dir.glob("*.ipynb") if p.is_file()))

    def master(self, notebook: str) -> Path:
        """The master notebook `notebook` (its name without .ipynb)."""
        return self.source_dir / f"{notebook}.ipynb"

    def release(self, notebook: str) -> Path:
        """The released notebook `notebook` (its name without .ipynb)."""
        return self.release_dir / f"{notebook}.ipynb"

    def submitted(self, student: str) -> Path:
        return self.course_dir / "submitted" / student / self.name

    def autograded(self, student: str) -> Path:
        return self.course_dir / "autograded" / student / self.name

    def feedback(self, student: str) -> Path:
        return self.course_dir / "feedback" / student / self.name


def names(course_dir: str | Path) -> list[str]:
    """The assignments under source/: every folder that holds a notebook, sorted."""
    source = Path(course_dir) / "source"
    if not source.is_dir():
        return []
    return sorted(p.name for p in source.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and any(p.glob("*.ipynb")))


def find(course_dir: str | Path, name: str | None = None) -> Layout:
    """The Layout of assignment `name`; without a name, the course's only assignment. KitError names the choices."""
    course_dir = Path(course_dir)
    known = names(course_dir)
    if name is None:
        if len(known) == 1:
            return Layout(course_dir, known[0])
        if not known:
            raise KitError(f"no assignment in {course_dir / 'source'}: each assignment is a folder there holding its "
                           "master notebook(s), as `nbgrader generate_assignment` expects.")
        raise KitError(f"this course has {len(known)} assignments ({', '.join(known)}): name the one you mean, "
                       f"e.g. `{coursedir.hint('release ' + known[0])}`.")
    if name not in known:
        raise KitError(f"no assignment called {name!r} in {course_dir / 'source'} "
                       f"(its assignments: {', '.join(known) or 'none'}). An assignment is a folder of source/ "
                       "holding its master notebook(s).")
    return Layout(course_dir, name)


def parts(master_nb: NotebookNode) -> dict[str, str]:
    """grade_id -> "graded" or "optional", for every cell of the master notebook with a grade_id."""
    found = {}
    for cell in master_nb.cells:
        grade_id = notebook.nbgrader_meta(cell).get("grade_id")
        if grade_id:
            found[grade_id] = "optional" if OPTIONAL_TAG in cell.get("metadata", {}).get("tags", []) else "graded"
    return found
