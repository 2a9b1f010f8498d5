"""Notebooks as a student who wrote the master's solution would hand them in.

The canary grades one before any student, and the benchmark and the tests build
submissions the same way: the release notebook with some solution cells filled in.
"""
import re
from pathlib import Path

import nbformat

from grader.core import notebook

# The END line may be the cell's last, with no newline after it.
_SOLUTION = re.compile(r"^[ \t]*### BEGIN SOLUTION[ \t]*\n(.*?)^[ \t]*### END SOLUTION[ \t]*(?:\n|\Z)", re.S | re.M)
_STUB = re.compile(r"^[ \t]*# YOUR CODE HERE\n[ \t]*raise NotImplementedError\(\)[ \t]*\n?", re.M)


def master_solutions(master):
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


DELIMITERS = ("BEGIN SOLUTION", "END SOLUTION")  # nbgrader's, unless the course's config sets its own


def delimiters_of(config):
    """The course's solution delimiters (c.ClearSolutions.begin/end_solution_delimeter), nbgrader's by default."""
    clear = config.get("ClearSolutions", {})
    return (str(clear.get("begin_solution_delimeter", DELIMITERS[0])),
            str(clear.get("end_solution_delimeter", DELIMITERS[1])))


def master_answers(master, release, delimiters=DELIMITERS):
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


def fill(answers, release):
    """The `release` notebook with the solution cells in `answers` (grade_id -> code) filled in."""
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


def write(nb_or_text, course_dir, student, assignment, name):
    """Place a submission at submitted/<student>/<assignment>/<name>.ipynb; return its path."""
    folder = Path(course_dir) / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    if isinstance(nb_or_text, str):
        path.write_text(nb_or_text)
    else:
        nbformat.write(nb_or_text, str(path))
    return path
