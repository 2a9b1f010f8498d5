"""Notebooks as a student who wrote the master's solution would hand them in.

The canary grades one before any student, and the benchmark and the tests build
submissions the same way: the release notebook with some solution cells filled in.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from grader.core import notebook

if TYPE_CHECKING:
    from nbformat import NotebookNode
    from traitlets.config import Config

# The END line may be the cell's last, with no newline after it.
_SOLUTION = re.compile(r"^[ \t]*### BEGIN SOLUTION[ \t]*\n(.*?)^[ \t]*### END SOLUTION[ \t]*(?:\n|\Z)", re.S | re.M)
_STUB = re.compile(r"^[ \t]*# YOUR CODE HERE\n[ \t]*raise NotImplementedError\(\)[ \t]*\n?", re.M)


def master_solutions(master: str | Path) -> dict[str, str]:
    """grade_id -> the code between BEGIN SOLUTION and END SOLUTION in each solution code cell of `master` (the
    whole cell where there are no such lines)."""
    bodies = {}
    for cell in notebook.read(master).cells:
        meta = notebook.nbgrader_meta(cell)
        if meta.get("solution") and cell.cell_type == "code":
            match = _SOLUTION.search(cell.source)
            # Without the markers, nbgrader releases the whole cell as the stub: the whole cell is the answer.
            bodies[meta["grade_id"]] = match.group(1) if match else cell.source.rstrip("\n") + "\n"
    return bodies


DELIMITERS: tuple[str, str] = ("BEGIN SOLUTION", "END SOLUTION")  # nbgrader's, unless the course's config sets its own


def delimiters_of(config: Config) -> tuple[str, str]:
    """The course's solution delimiters (c.ClearSolutions.begin/end_solution_delimeter), nbgrader's by default."""
    clear = config.get("ClearSolutions", {})
    return (str(clear.get("begin_solution_delimeter", DELIMITERS[0])),
            str(clear.get("end_solution_delimeter", DELIMITERS[1])))


def master_answers(master: str | Path, release: str | Path, delimiters: Sequence[str] = DELIMITERS) -> NotebookNode:
    """The `release` notebook as a student who wrote the master's answers would hand it in: every answer cell
    (code or Markdown) holds the master's, without the lines that hold a solution delimiter (nbgrader's own
    rule for what ClearSolutions removes, wherever the delimiter stands in the line)."""
    answers = {}
    for cell in notebook.read(master).cells:
        meta = notebook.nbgrader_meta(cell)
        if meta.get("solution") and meta.get("grade_id"):
            lines = cell.source.splitlines(keepends=True)
            answers[meta["grade_id"]] = "".join(line for line in lines if not any(d in line for d in delimiters))
    nb = notebook.read(release)
    for cell in nb.cells:
        meta = notebook.nbgrader_meta(cell)
        if meta.get("solution") and meta.get("grade_id") in answers:
            cell.source = answers[meta["grade_id"]]
    return nb


def fill(answers: Mapping[str, str], release: str | Path) -> NotebookNode:
    """The `release` notebook with the solution cells in `answers` (grade_id -> code) filled in."""
    nb = notebook.read(release)
    unknown = set(answers)
    for cell in nb.cells:
        grade_id = notebook.nbgrader_meta(cell).get("grade_id")
        if grade_id in answers:
            if not _STUB.search(cell.source):
                raise ValueError(f"release cell {grade_id!r} has no '# YOUR CODE HERE' stub to fill")
            # grade_id is one of the keys of `answers` here (checked above), never None: mypy cannot see it in a lambda
            cell.source = _STUB.sub(lambda _: answers[grade_id], cell.source, count=1)  # type: ignore[index]
            unknown.discard(grade_id)
    if unknown:
        raise KeyError(f"the release has no solution cells called {sorted(unknown)}")
    return nb


def write(nb_or_text: NotebookNode | str, course_dir: str | Path, student: str, name: str, notebook: str) -> Path:
    """Place a submission of the assignment called `name` at submitted/<student>/<name>/<notebook>.ipynb; return
    its path."""
    folder = Path(course_dir) / "submitted" / student / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{notebook}.ipynb"
    if isinstance(nb_or_text, str):
        path.write_text(nb_or_text)
    else:
        nbformat.write(nb_or_text, str(path))
    return path
